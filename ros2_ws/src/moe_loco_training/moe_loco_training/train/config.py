"""The training configuration (``config/train*.yaml``): dataclasses, loaded once and validated.

A YAML file may start with ``inherit: <other.yaml>`` (a path relative to the file, or the name of
a packaged config): the parent is loaded first and the child overrides it. Mappings merge key by
key, except the ``env`` override tables (dotted keys of ``config/env.yaml``), whose entries are
replaced whole, so a child that sets ``terrain.tasks`` replaces the parent's task set. Unknown
keys, wrong types and bad values raise :class:`TrainConfigError` naming the dotted field.

The schedule is an ordered mapping of stages (the paper's Section IV-A: plane pretraining in both
gaits, challenging terrains, then Probability Annealing Selection); ``iteration_scale`` scales
every stage's iterations by one number, for a machine smaller than the paper's.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from moe_loco_training.models import MODEL_PRESETS, ModelConfig, model_config_from_preset
from moe_loco_training.strict_config import StrictLoader

CONFIG_FILE = "train.yaml"
STAGE_KINDS = ("oracle", "pas")
"""``oracle``: the actor gets the true privileged latent (stage 1, Algorithm 1); ``pas``:
Probability Annealing Selection between the true latent and the estimate (stage 2, Algorithm 2)."""


class TrainConfigError(ValueError):
    """A configuration training refuses; the message names the field."""


# ----------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class AlgorithmConfig:
    """PPO for recurrent policies, with the estimator's reconstruction loss (eq. 4)."""

    num_learning_epochs: int = 5
    num_mini_batches: int = 4
    """Minibatches per epoch; each holds the whole rollouts of 1/num_mini_batches of the robots."""
    clip_param: float = 0.2
    gamma: float = 0.99
    lam: float = 0.95
    value_loss_coef: float = 1.0
    use_clipped_value_loss: bool = True
    entropy_coef: float = 0.01
    recon_loss_coef: float = 1.0
    """Weight of L_recon (eq. 4 weighs the three losses equally)."""
    recon_detach_target: bool = True
    """Stop L_recon's gradient at the target [Enc(i_t), e_t] (the encoder learns from RL only)."""
    learning_rate: float = 1.0e-3
    schedule: str = "adaptive"
    """``adaptive``: the learning rate follows the KL divergence; ``fixed``: constant."""
    desired_kl: float = 0.01
    lr_min: float = 1.0e-5
    lr_max: float = 1.0e-2
    max_grad_norm: float = 1.0
    min_std: float = 1.0e-3
    """Floor of the action distribution's standard deviation."""
    noise_correlation: float = 0.0
    """Temporally correlated exploration: the rollout's unit action noise is the AR(1) process
    ``eps_t = c eps_(t-1) + sqrt(1 - c^2) n_t`` (``n_t`` white, a fresh draw at each robot's
    episode start), so every step's noise is still N(0, sigma^2) and PPO's per-step
    log-probabilities are the Gaussian's; 0: white noise (rsl_rl's). A correlated push lasts
    ~1 / (1 - c) steps, long enough to move a leg through a step (white noise averages out
    within the PD loop's few steps)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.noise_correlation < 1.0:
            raise ValueError(f"noise_correlation must be in [0, 1), got {self.noise_correlation}")
        if self.num_learning_epochs < 1 or self.num_mini_batches < 1:
            raise ValueError("num_learning_epochs and num_mini_batches must be >= 1")
        if self.schedule not in ("adaptive", "fixed"):
            raise ValueError(f"schedule must be 'adaptive' or 'fixed', got {self.schedule!r}")
        if not (0 < self.gamma <= 1 and 0 <= self.lam <= 1):
            raise ValueError("gamma must be in (0, 1] and lam in [0, 1]")
        for name in ("clip_param", "learning_rate", "desired_kl", "lr_min", "lr_max"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if not self.lr_min <= self.learning_rate <= self.lr_max:
            raise ValueError("learning_rate must be within [lr_min, lr_max]")
        for name in ("value_loss_coef", "entropy_coef", "recon_loss_coef", "max_grad_norm"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if not self.min_std > 0:
            raise ValueError("min_std must be > 0")


@dataclass(frozen=True)
class PasConfig:
    """Probability Annealing Selection: the true latent with probability P_t = alpha^t.

    t counts the control steps taken in ``pas`` stages (Algorithm 2 increments it every step).
    Once P_t falls below ``floor`` it is 0: the policy then runs on the estimate alone.
    """

    alpha: float | None = None
    """None: chosen so that P_t reaches ``floor`` after ``reach_floor_at`` of the PAS steps."""
    floor: float = 1.0e-3
    reach_floor_at: float = 0.8

    def __post_init__(self) -> None:
        if self.alpha is not None and not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        if not 0 < self.floor < 1:
            raise ValueError("floor must be in (0, 1)")
        if not 0 < self.reach_floor_at <= 1:
            raise ValueError("reach_floor_at must be in (0, 1]")


@dataclass(frozen=True)
class StageConfig:
    """One stage of the schedule."""

    kind: str = "oracle"
    iterations: int = 1
    """PPO iterations at ``iteration_scale`` 1 (the paper's number)."""
    enabled: bool = True
    env: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Dotted-key overrides of the environment for this stage, on top of the top-level ``env``."""

    def __post_init__(self) -> None:
        if self.kind not in STAGE_KINDS:
            raise ValueError(f"kind must be one of {STAGE_KINDS}, got {self.kind!r}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")


@dataclass(frozen=True)
class RunnerConfig:
    """Rollouts, checkpoints, logs and the final export."""

    num_steps_per_env: int = 24
    save_interval: int = 100
    """Write a checkpoint every this many iterations (and at the end); 0: only at the end."""
    log_interval: int = 1
    """Print the progress line every this many iterations."""
    tensorboard: bool = True
    progress: bool = True
    export: bool = True
    """Export the final policy (``policy.onnx``) through ``moe_loco_training.export``."""

    def __post_init__(self) -> None:
        if self.num_steps_per_env < 1:
            raise ValueError("num_steps_per_env must be >= 1")
        if self.save_interval < 0 or self.log_interval < 1:
            raise ValueError("save_interval must be >= 0 and log_interval >= 1")


@dataclass(frozen=True)
class TrainConfig:
    """The whole training run."""

    seed: int = 0
    """Seeds the model's initialisation, action sampling, minibatches, PAS and the environment."""
    run_root: str = "runs"
    """Runs go to ``<run_root>/<run_name>-<timestamp>`` unless the CLI names a directory."""
    run_name: str = "train"
    torch_threads: int = 0
    """torch intra-op threads; 0 leaves torch's default."""
    iteration_scale: float = 1.0
    """Multiplies every stage's iterations (at least 1 each)."""
    env_config: str | None = None
    """An environment YAML; None: the packaged ``config/env.yaml``."""
    env: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Dotted-key overrides of the environment configuration for every stage."""
    model_preset: str = "paper"
    """The network's sizes: ``paper`` (Table VI, for GPUs) or ``cpu`` (the same structure sized
    for a 2-core CPU); see ``moe_loco_training.models.MODEL_PRESETS``."""
    model: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """``ModelConfig`` fields over the preset's."""
    init_action_std: float | None = None
    """With ``--init``: set every action std to this value after copying the weights (a converged
    policy has lost the exploration a new skill needs); None keeps the checkpoint's."""
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    pas: PasConfig = field(default_factory=PasConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    stages: Mapping[str, StageConfig] = field(
        default_factory=lambda: MappingProxyType({"plane": StageConfig()})
    )

    def __post_init__(self) -> None:
        if not self.iteration_scale > 0:
            raise ValueError("iteration_scale must be > 0")
        if self.torch_threads < 0:
            raise ValueError("torch_threads must be >= 0")
        if self.init_action_std is not None and not self.init_action_std > 0:
            raise ValueError(f"init_action_std must be > 0 or null, got {self.init_action_std}")
        if self.model_preset not in MODEL_PRESETS:
            raise ValueError(
                f"model_preset must be one of {sorted(MODEL_PRESETS)}, got {self.model_preset!r}"
            )
        if not any(s.enabled for s in self.stages.values()):
            raise ValueError("stages: at least one stage must be enabled")
        try:
            self.model_config()
        except (TypeError, ValueError) as e:
            raise ValueError(f"model: {e}") from None

    def model_config(self) -> ModelConfig:
        """The network sizes (``model`` over the preset's)."""
        return model_config_from_preset(self.model_preset, dict(self.model))

    def schedule(self) -> list[tuple[str, StageConfig, int]]:
        """The enabled stages in order, with their scaled iteration counts."""
        return [
            (name, s, max(1, round(s.iterations * self.iteration_scale)))
            for name, s in self.stages.items()
            if s.enabled
        ]

    @property
    def total_iterations(self) -> int:
        return sum(n for _, _, n in self.schedule())

    def pas_alpha(self) -> float:
        """alpha of P_t = alpha^t (explicit, or derived from the PAS stages' step count)."""
        if self.pas.alpha is not None:
            return self.pas.alpha
        steps = sum(n for _, s, n in self.schedule() if s.kind == "pas")
        steps *= self.runner.num_steps_per_env
        if steps == 0:
            return 1.0
        return float(self.pas.floor ** (1.0 / max(1.0, self.pas.reach_floor_at * steps)))

    def to_dict(self) -> dict:
        return _plain(self)


# ----------------------------------------------------------------------------- strict loading
_build = StrictLoader(TrainConfigError, none_is_empty=True).build


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    return v


def merge(parent: Mapping, child: Mapping, replace_entries: bool = False) -> dict:
    """``child`` over ``parent``: mappings merge recursively; in an ``env`` table entries (dotted
    keys) are replaced whole."""
    out = dict(parent)
    for k, v in child.items():
        if not replace_entries and isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v, replace_entries=(k == "env"))
        else:
            out[k] = v
    return out


def config_dir() -> Path:
    """``config/`` beside the package (source tree) or in its ament share dir."""
    here = Path(__file__).resolve().parents[2] / "config"
    if (here / CONFIG_FILE).is_file():
        return here
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("moe_loco_training")) / "config"
    except Exception as e:
        raise TrainConfigError(
            f"cannot find {CONFIG_FILE}: not beside the package, and {e}"
        ) from None


def resolve_config_path(name: str | os.PathLike[str] | None) -> Path:
    """A path as given if it exists, else a packaged config by name (``train_ci`` or
    ``train_ci.yaml``); None: the packaged ``train.yaml``."""
    if name is None:
        return config_dir() / CONFIG_FILE
    p = Path(name)
    if p.is_file():
        return p
    packaged = config_dir() / (p.name if p.suffix else f"{p.name}.yaml")
    if packaged.is_file():
        return packaged
    raise TrainConfigError(f"no training config {str(name)!r} (nor a packaged one of that name)")


def load_raw(path: str | os.PathLike[str] | None, _seen: tuple[Path, ...] = ()) -> dict:
    """The merged plain data of a config file and the files it inherits from."""
    p = resolve_config_path(path).resolve()
    if p in _seen:
        raise TrainConfigError(f"{p}: inherit cycle through {[str(s) for s in _seen]}")
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise TrainConfigError(f"cannot read {p}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise TrainConfigError(f"{p}: not valid YAML: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise TrainConfigError(f"{p}: expected a mapping at the top level")
    data = dict(data)
    parent = data.pop("inherit", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise TrainConfigError(f"{p}: inherit: expected a file name, got {parent!r}")
    ppath = p.parent / parent if (p.parent / parent).is_file() else parent
    return merge(load_raw(ppath, (*_seen, p)), data)


def set_dotted(data: dict, key: str, value: Any) -> dict:
    """``data`` with ``a.b.c = value`` (creating mappings on the way); ``env.x.y`` sets the env
    override ``x.y``."""
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        if part == "env":
            rest = ".".join(parts[i + 1 :])
            node[part] = {**dict(node.get(part) or {}), rest: value}
            return data
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, Mapping) else {}
        node = node[part]
    node[parts[-1]] = value
    return data


def from_dict(data: Any) -> TrainConfig:
    """Validate plain data (a YAML document's layout) into a :class:`TrainConfig`."""
    return _build(TrainConfig, data, "")


def load_train_config(
    path: str | os.PathLike[str] | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainConfig:
    """Load, merge (``inherit``), override (dotted keys, e.g. ``{"seed": 3}``) and validate."""
    data = load_raw(path)
    for k, v in (overrides or {}).items():
        data = set_dotted(data, k, v)
    return from_dict(data)


__all__ = [
    "STAGE_KINDS",
    "AlgorithmConfig",
    "PasConfig",
    "RunnerConfig",
    "StageConfig",
    "TrainConfig",
    "TrainConfigError",
    "from_dict",
    "load_train_config",
    "merge",
]
