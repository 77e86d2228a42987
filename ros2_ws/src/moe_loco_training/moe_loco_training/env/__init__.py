"""The multitask training environment (vectorised MuJoCo on the CPU).

``MultitaskEnv`` (:mod:`.vec_env`, whose docstring is the environment contract), its
configuration (:mod:`.config`, ``config/env.yaml``), the terrain tiles (:mod:`.tiles`), reward
terms (:mod:`.rewards`, Table V), terminations (:mod:`.terminations`, Section III-B), the
curriculum (:mod:`.curriculum`) and domain randomisation (:mod:`.randomization`).
"""

from moe_loco_training.env.config import EnvConfig, EnvConfigError, load_env_config, play_variant
from moe_loco_training.env.vec_env import EnvStep, MultitaskEnv, make_env

ENVIRONMENTS = {"multitask": MultitaskEnv}
"""Registry: environment name -> class (a second backend registers here under its own name)."""

__all__ = [
    "ENVIRONMENTS",
    "EnvConfig",
    "EnvConfigError",
    "EnvStep",
    "MultitaskEnv",
    "load_env_config",
    "make_env",
    "play_variant",
]
