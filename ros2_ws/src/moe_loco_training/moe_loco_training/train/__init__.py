"""MoE-Loco training: recurrent PPO, the two stages with Probability Annealing Selection.

:mod:`.config` (``config/train*.yaml``), :mod:`.storage` (rollouts, sequence minibatches),
:mod:`.ppo` (losses, update), :mod:`.pas` (P_t = alpha^t), :mod:`.runner` (the loop, checkpoints,
logs, export), :mod:`.cli` (``moe-loco-train``).
"""

from moe_loco_training.train.config import TrainConfig, TrainConfigError, load_train_config
from moe_loco_training.train.pas import ProbabilityAnnealing
from moe_loco_training.train.ppo import PPO
from moe_loco_training.train.runner import IterationStats, Trainer, evaluate_policy
from moe_loco_training.train.storage import RolloutStorage

__all__ = [
    "PPO",
    "IterationStats",
    "ProbabilityAnnealing",
    "RolloutStorage",
    "TrainConfig",
    "TrainConfigError",
    "Trainer",
    "evaluate_policy",
    "load_train_config",
]
