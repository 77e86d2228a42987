"""The MoE-Loco networks: encoder, estimator, actor/critic LSTMs, MoE heads with a shared gate."""

from moe_loco_training.models.actor_critic import (
    MODEL_PRESETS,
    ModelConfig,
    ModelOutput,
    MoELocoActorCritic,
    ParameterCounts,
    Privileged,
    RecurrentState,
    compare_parameter_counts,
    format_parameter_counts,
    matched_standard_head,
    model_config_from_preset,
    on_cpu,
    parameter_counts,
)
from moe_loco_training.models.moe import ExpertHeads, GateNetwork, apply_expert_scale

__all__ = [
    "MODEL_PRESETS",
    "ExpertHeads",
    "GateNetwork",
    "MoELocoActorCritic",
    "ModelConfig",
    "ModelOutput",
    "ParameterCounts",
    "Privileged",
    "RecurrentState",
    "apply_expert_scale",
    "compare_parameter_counts",
    "format_parameter_counts",
    "matched_standard_head",
    "model_config_from_preset",
    "on_cpu",
    "parameter_counts",
]
