"""``python -m moe_loco_training.models``: print the parameter counts of MoE and "w/o MoE"."""

from moe_loco_training.models.actor_critic import format_parameter_counts

print(format_parameter_counts())
