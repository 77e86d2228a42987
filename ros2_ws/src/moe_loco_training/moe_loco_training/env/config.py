"""The environment's configuration (``config/env.yaml``): dataclasses, loaded once and validated.

Every section is a frozen dataclass whose defaults equal the packaged YAML (a test keeps them
equal). :func:`load_env_config` reads a YAML file strictly: unknown keys, wrong types and bad
values raise :class:`EnvConfigError` naming the dotted field (``rewards.weights.bipedal.foo``).
Variants override rather than copy: ``dataclasses.replace(cfg, num_envs=16)`` or
:meth:`EnvConfig.replace` with dotted keys.
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

from moe_loco_training.env.constants import ADAPTATION_TASKS, GAIT_NAMES, TASKS
from moe_loco_training.observations import DEFAULT_COMMAND_RANGES
from moe_loco_training.strict_config import StrictLoader

CONFIG_FILE = "env.yaml"
SECTION_KINDS = ("bar", "pit", "baffle", "stairs", "slope", "plane")
DIRECTIONS = ("up_down", "up", "down")


class EnvConfigError(ValueError):
    """A configuration the environment refuses; the message names the field."""


def _frozen(d: Mapping) -> Mapping:
    return MappingProxyType(dict(d))


# ----------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class TaskSpec:
    """One task: its terrain tiles (one per curriculum level) and its gait."""

    kind: str
    """Tile obstacle: ``bar``, ``pit``, ``baffle``, ``stairs``, ``slope`` or ``plane``."""
    gait: str
    """``quadrupedal`` or ``bipedal``: the gait one-hot at the start of an episode."""
    easy: float = 0.0
    """Obstacle value at level 0 (bar height, pit width, baffle clearance, step height [m],
    slope angle [deg]); plane tiles ignore it."""
    hard: float = 0.0
    """Obstacle value at the top level."""
    count: int = 1
    """Obstacles (or stair/slope sets) per tile."""
    direction: str = "up_down"
    """Stairs and slopes: ``up_down``, ``up`` or ``down``."""
    stand_still: bool = False
    """Zero velocity command throughout (the bipedal standing-up task)."""
    weight: float = 1.0
    """Share of the robots that get this task (relative)."""
    upright_start: float = 0.0
    """Bipedal tasks: the share of resets that start already on the rear legs (body vertical,
    rear thighs rotated back by 90 degrees; :data:`~moe_loco_training.env.vec_env.UPRIGHT_POSE`):
    reference-state initialisation, so that balancing on two legs is learnt beside standing up."""
    upright_pitch_min: float = 90.0
    """[deg] Upright starts draw the body's nose-up pitch uniformly from this to 90 (the rear
    thighs rotated back by as much): below 90, part-way up, the rising itself is practised."""
    lift_leg: str | None = None
    """A front leg held up (``FR`` or ``FL``): the three-legged gait of the paper's adaptation
    experiment (Fig. 10), quadrupedal command, rewarded by the ``lifted_*`` terms."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.upright_start <= 1.0:
            raise ValueError(f"upright_start must be in [0, 1], got {self.upright_start}")
        if self.upright_start > 0 and self.gait != "bipedal":
            raise ValueError("upright_start is for bipedal tasks")
        if not 0.0 <= self.upright_pitch_min <= 90.0:
            raise ValueError(f"upright_pitch_min must be in [0, 90], got {self.upright_pitch_min}")
        if self.lift_leg is not None and self.lift_leg not in ("FR", "FL"):
            raise ValueError(f"lift_leg must be FR, FL or null, got {self.lift_leg!r}")
        if self.lift_leg is not None and self.gait != "quadrupedal":
            raise ValueError("lift_leg needs the quadrupedal gait (a three-legged walk)")
        if self.kind not in SECTION_KINDS:
            raise ValueError(f"kind must be one of {SECTION_KINDS}, got {self.kind!r}")
        if self.gait not in GAIT_NAMES:
            raise ValueError(f"gait must be one of {GAIT_NAMES}, got {self.gait!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.kind != "plane" and not (self.easy > 0 and self.hard > 0):
            raise ValueError(f"easy and hard must be > 0 for {self.kind} tiles")
        if self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")
        if self.weight < 0:
            raise ValueError(f"weight must be >= 0, got {self.weight}")

    def value(self, level: int, levels: int) -> float:
        """The obstacle value of a level (linear from ``easy`` to ``hard``)."""
        if levels == 1:
            return self.hard
        return self.easy + (self.hard - self.easy) * level / (levels - 1)


def _default_tasks() -> Mapping[str, TaskSpec]:
    q, b = "quadrupedal", "bipedal"
    return _frozen(
        {
            "bar_q": TaskSpec("bar", q, 0.02, 0.20, 3),
            "pit_q": TaskSpec("pit", q, 0.02, 0.20, 3),
            "baffle_q": TaskSpec("baffle", q, 0.40, 0.22, 3),
            "stair_q": TaskSpec("stairs", q, 0.02, 0.15, 1, "up_down"),
            "slope_q": TaskSpec("slope", q, 5.0, 35.0, 1, "up_down"),
            "plane_q": TaskSpec("plane", q),
            "standup_b": TaskSpec("plane", b, stand_still=True),
            "walk_b": TaskSpec("plane", b),
            "slope_b": TaskSpec("slope", b, 5.0, 35.0, 1, "up_down"),
            "stair_b": TaskSpec("stairs", b, 0.02, 0.15, 1, "down"),
        }
    )


@dataclass(frozen=True)
class TerrainConfig:
    """The tile grid: one row of ``levels`` tiles per task."""

    levels: int = 10
    init_max_level: int = 3
    """New robots start on a level drawn from 0..init_max_level."""
    tile_length: float = 8.0
    tile_width: float = 4.0
    lead_in: float = 1.5
    """Flat start of a tile; robots spawn in its middle."""
    friction: float = 1.0
    height_resolution: float = 0.02
    """Sampling step of the tiles' height profiles (base height reward) [m]."""
    tasks: Mapping[str, TaskSpec] = field(default_factory=_default_tasks)

    def __post_init__(self) -> None:
        if self.levels < 1:
            raise ValueError(f"levels must be >= 1, got {self.levels}")
        if not 0 <= self.init_max_level < self.levels:
            raise ValueError(f"init_max_level must be in 0..levels-1, got {self.init_max_level}")
        for name in ("tile_length", "tile_width", "lead_in", "friction", "height_resolution"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        known = (*TASKS, *ADAPTATION_TASKS)
        unknown = sorted(set(self.tasks) - set(known))
        if unknown:
            raise ValueError(f"tasks.{unknown[0]}: unknown task (known: {list(known)})")
        if not self.tasks or sum(t.weight for t in self.tasks.values()) <= 0:
            raise ValueError("tasks: at least one task needs a weight > 0")


Range = tuple[float, float]


def _default_obstacle_vx() -> Mapping[str, Range]:
    return _frozen({"quadrupedal": (0.3, 1.0), "bipedal": (0.2, 0.6)})


@dataclass(frozen=True)
class CommandConfig:
    """Velocity commands, sampled per gait, and gait switches on plane tiles."""

    resampling_time_s: float = 10.0
    ranges: Mapping[str, Mapping[str, Range]] = field(
        default_factory=lambda: DEFAULT_COMMAND_RANGES
    )
    """Per gait, vx / vy / wz ranges on plane tiles (the policy file's command ranges)."""
    obstacle_vx: Mapping[str, Range] = field(default_factory=_default_obstacle_vx)
    """Per gait, forward speed on obstacle tiles; vy = 0 there and wz holds the heading."""
    heading_gain: float = 1.0
    """Obstacle tiles: wz = clip(gain * (0 - heading)) keeps the robot facing +x [1/s]."""
    plane_min_scale: float = 0.4
    """Plane tiles' curriculum: level 0 samples within this fraction of the ranges, the top
    level within the full ranges."""
    gait_switch_prob: float = 0.5
    """Plane tiles: probability that a command resample also flips the gait. Only robots whose
    task's other gait is trained on a plane tile too switch (a quadrupedal-only task set never
    issues a bipedal command)."""
    zero_prob: float = 0.1
    """Plane tiles: probability that a resample commands standing still (zero velocity)."""

    def __post_init__(self) -> None:
        for what, table in (("ranges", self.ranges), ("obstacle_vx", self.obstacle_vx)):
            if set(table) != set(GAIT_NAMES):
                raise ValueError(f"{what} needs exactly the gaits {list(GAIT_NAMES)}")
        for gait, axes in self.ranges.items():
            if set(axes) != {"vx", "vy", "wz"}:
                raise ValueError(f"ranges.{gait} needs vx, vy and wz, got {sorted(axes)}")
            for ax, (lo, hi) in axes.items():
                if lo > hi:
                    raise ValueError(f"ranges.{gait}.{ax}: low {lo} > high {hi}")
        for gait, (lo, hi) in self.obstacle_vx.items():
            if lo > hi:
                raise ValueError(f"obstacle_vx.{gait}: low {lo} > high {hi}")
        if not self.resampling_time_s > 0:
            raise ValueError("resampling_time_s must be > 0")
        if not 0 <= self.plane_min_scale <= 1:
            raise ValueError("plane_min_scale must be in [0, 1]")
        if not 0 <= self.gait_switch_prob <= 1:
            raise ValueError("gait_switch_prob must be in [0, 1]")
        if not 0 <= self.zero_prob <= 1:
            raise ValueError("zero_prob must be in [0, 1]")


@dataclass(frozen=True)
class CurriculumConfig:
    """Promotion and demotion between difficulty levels, decided at each reset."""

    enabled: bool = True
    promote_fraction: float = 0.5
    """Promote when the robot went further than this fraction of its tile's course."""
    demote_fraction: float = 0.5
    """Demote when it went less than this fraction of the distance its command asked for."""
    plane_promote_tracking: float = 0.8
    """Plane tiles: promote a robot whose episode ran to its end with a mean linear-velocity
    tracking factor exp(-|v_cmd - v|^2 / sigma) of at least this (legged_gym widens its command
    ranges once tracking passes 80 % of its maximum); demote one that terminated."""

    def __post_init__(self) -> None:
        for name in ("promote_fraction", "demote_fraction", "plane_promote_tracking"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1]")


@dataclass(frozen=True)
class TerminationConfig:
    """Section III-B, plus the time-out (``EnvConfig.episode_length_s``)."""

    quad_roll: float = 1.0
    quad_pitch: float = 1.6
    bipedal_grace_s: float = 1.0
    """Bipedal: link contacts terminate only this long after the bipedal command began."""
    quad_switch_grace_s: float = 1.0
    """Quadrupedal after a switch from bipedal: tilt does not terminate for this long."""
    contact_threshold: float = 1.0
    """A link touches the ground when its contact force exceeds this [N]."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if not getattr(self, f.name) >= 0:
                raise ValueError(f"{f.name} must be >= 0")


def _default_noise() -> Mapping[str, float]:
    return _frozen(
        {
            "projected_gravity": 0.05,
            "base_ang_vel": 0.2,
            "joint_pos": 0.01,
            "joint_vel": 1.5,
            "last_action": 0.0,
        }
    )


@dataclass(frozen=True)
class RandomizationConfig:
    """Domain randomisation; every draw comes from the environment's seeded generator."""

    enabled: bool = True
    friction: Range | None = (0.5, 1.25)
    """Foot friction coefficient (the feet's contact priority makes theirs the ground's)."""
    added_mass: Range | None = (-1.0, 2.0)
    """Added to the base mass [kg]."""
    com_offset: tuple[float, float, float] | None = (0.03, 0.02, 0.02)
    """Base centre-of-mass shift, uniform in +-this per axis [m]."""
    motor_strength: Range | None = (0.9, 1.1)
    """Per-motor factor on the PD torque (before the torque limit)."""
    kp_factor: Range | None = (0.85, 1.15)
    kd_factor: Range | None = (0.85, 1.15)
    """Per-motor factors on the PD gains (a real motor's gains differ from the commanded)."""
    push_interval_s: float = 8.0
    """Every this long a robot's base gets a random horizontal velocity kick (0: never)."""
    push_max_vel: float = 0.5
    """[m/s] per horizontal axis."""
    action_latency_substeps: tuple[int, int] | None = (0, 4)
    """Per episode, a new target acts after this many physics substeps (inclusive range;
    0..4 substeps of 5 ms: 0-20 ms between the command and the actuation)."""
    obs_noise_level: float = 1.0
    obs_noise: Mapping[str, float] = field(default_factory=_default_noise)
    """Uniform noise amplitude per proprio term, in the term's physical unit (before scaling)."""

    def __post_init__(self) -> None:
        for name in ("friction", "added_mass", "motor_strength", "kp_factor", "kd_factor"):
            r = getattr(self, name)
            if r is not None and r[0] > r[1]:
                raise ValueError(f"{name}: low {r[0]} > high {r[1]}")
        for name in ("kp_factor", "kd_factor"):
            r = getattr(self, name)
            if r is not None and r[0] <= 0:
                raise ValueError(f"{name} must stay > 0")
        if self.friction is not None and self.friction[0] <= 0:
            raise ValueError("friction must stay > 0")
        if self.motor_strength is not None and self.motor_strength[0] <= 0:
            raise ValueError("motor_strength must stay > 0")
        if self.com_offset is not None and any(v < 0 for v in self.com_offset):
            raise ValueError("com_offset half-ranges must be >= 0")
        lat = self.action_latency_substeps
        if lat is not None and not 0 <= lat[0] <= lat[1]:
            raise ValueError(f"action_latency_substeps must be 0 <= low <= high, got {lat}")
        if self.push_interval_s < 0 or self.push_max_vel < 0 or self.obs_noise_level < 0:
            raise ValueError("push_interval_s, push_max_vel and obs_noise_level must be >= 0")
        known = set(_default_noise())
        unknown = sorted(set(self.obs_noise) - known)
        if unknown:
            raise ValueError(f"obs_noise.{unknown[0]}: unknown term (known: {sorted(known)})")


@dataclass(frozen=True)
class RewardConfig:
    """Table V: shapes and weights per gait (weights 0 switch a term off)."""

    scale_by_dt: bool = True
    """Multiply every weight by the control period (legged_gym's convention)."""
    tracking_sigma: float = 0.25
    ang_tracking_sigma: float = 0.25
    bipedal_tracking_sigma: float | None = None
    """The bipedal gait's linear-velocity tracking sigma (None: ``tracking_sigma``). Bipedal
    speeds are small: at 0.25 a robot standing still under a 0.3 m/s command earns 0.70 of the
    term, so standing beats the risk of stepping."""
    base_height_target: float = 0.30
    """Quadrupedal base height above the terrain [m]."""
    bipedal_z_min: float = 0.30
    bipedal_z_max: float = 0.55
    """Base height above the terrain mapped to 0..1 by the bipedal height terms [m]."""
    bipedal_cos_threshold: float = 0.95
    """Bipedal tracking counts only with cos(theta) above this (theta: body x axis to up)."""
    front_allow_s: float = 1.0
    """T_allow: front-leg regularisation starts this long after the bipedal command."""
    contact_threshold: float = 1.0
    soft_torque_limit: float = 0.9
    """The torque terms penalise applied torque beyond this fraction of the motor's limit."""
    feet_air_time_target: float = 0.5
    """``feet_air_time`` pays (air time - this) at each touchdown (legged_gym: 0.5 s)."""
    rear_feet_air_time_target: float = 0.5
    """The same for the bipedal ``rear_feet_air_time`` (a shuffle on two legs steps shorter)."""
    rear_single_stance_max_s: float = 0.4
    """The cap of the bipedal ``rear_single_stance`` term [s] (IsaacLab's humanoids: 0.4)."""
    only_positive: bool = True
    """Clip the total reward of a step at zero before the termination penalty is added
    (legged_gym's ``only_positive_rewards``, mujoco_playground's clip): early on, penalties
    would otherwise teach the robot to end its episode."""
    weights: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: _frozen({}))
    """Per gait, term name -> weight. Filled with Table V's values plus the recipe's
    additions (``rewards.RECIPE_ADDITIONS``) by default."""

    def __post_init__(self) -> None:
        if not (self.tracking_sigma > 0 and self.ang_tracking_sigma > 0):
            raise ValueError("tracking sigmas must be > 0")
        if self.bipedal_tracking_sigma is not None and not self.bipedal_tracking_sigma > 0:
            raise ValueError("bipedal_tracking_sigma must be > 0 (or null: tracking_sigma)")
        if not self.bipedal_z_max > self.bipedal_z_min:
            raise ValueError("bipedal_z_max must be > bipedal_z_min")
        if not 0 < self.soft_torque_limit <= 1:
            raise ValueError("soft_torque_limit must be in (0, 1]")
        if not (self.feet_air_time_target >= 0 and self.rear_feet_air_time_target >= 0):
            raise ValueError("feet_air_time_target and rear_feet_air_time_target must be >= 0")
        if not self.rear_single_stance_max_s > 0:
            raise ValueError("rear_single_stance_max_s must be > 0")
        from moe_loco_training.env.rewards import TERMS, default_weights

        if not self.weights:
            object.__setattr__(self, "weights", default_weights())
        if set(self.weights) != set(GAIT_NAMES):
            raise ValueError(f"weights needs exactly the gaits {list(GAIT_NAMES)}")
        for gait, table in self.weights.items():
            unknown = sorted(set(table) - set(TERMS[gait]))
            if unknown:
                raise ValueError(
                    f"weights.{gait}.{unknown[0]}: unknown reward term "
                    f"(known: {sorted(TERMS[gait])})"
                )


@dataclass(frozen=True)
class ControlSection:
    """The deployment PD law (``moe_loco_training.control.ControlConfig``'s numbers)."""

    action_scale: float = 0.25
    action_clip: float = 100.0
    kp: float = 40.0
    kd: float = 0.5

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if not getattr(self, f.name) > 0:
                raise ValueError(f"{f.name} must be > 0")


@dataclass(frozen=True)
class EnvConfig:
    """The whole environment. ``control_dt = timestep * substeps`` (0.02 s: 50 Hz)."""

    num_envs: int = 256
    seed: int = 0
    contact: str = "cheap"
    """Contact preset of ``moe_loco_sim.go2_model`` (``cheap`` for training)."""
    timestep: float = 0.005
    substeps: int = 4
    episode_length_s: float = 20.0
    num_threads: int = 0
    """Threads stepping physics (``mujoco.rollout``); 0: one per CPU core."""
    implicit_scale: float = 0.02
    """i_t = link contact forces [N] times this."""
    backend: str = "mujoco"
    """Physics: ``mujoco`` (C MuJoCo, ``mujoco.rollout`` threads) or ``warp`` (MuJoCo Warp on
    ``warp_device``; :mod:`moe_loco_training.env.warp_physics`). Everything else is one code."""
    warp_device: str = "cpu"
    """The Warp device of ``backend: warp``: ``cpu`` or ``cuda:<n>``."""
    control: ControlSection = field(default_factory=ControlSection)
    terrain: TerrainConfig = field(default_factory=TerrainConfig)
    commands: CommandConfig = field(default_factory=CommandConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    terminations: TerminationConfig = field(default_factory=TerminationConfig)
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        if self.num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {self.num_envs}")
        if not self.timestep > 0 or self.substeps < 1:
            raise ValueError("timestep must be > 0 and substeps >= 1")
        if not self.episode_length_s > 0:
            raise ValueError("episode_length_s must be > 0")
        if self.num_threads < 0:
            raise ValueError("num_threads must be >= 0")
        if self.backend not in ("mujoco", "warp"):
            raise ValueError(f"backend must be mujoco or warp, got {self.backend!r}")
        if not (self.warp_device == "cpu" or self.warp_device.startswith("cuda")):
            raise ValueError(f"warp_device must be cpu or cuda:<n>, got {self.warp_device!r}")
        from moe_loco_sim.go2_model import CONTACT_PRESETS

        if self.contact not in CONTACT_PRESETS:
            raise ValueError(f"contact must be one of {sorted(CONTACT_PRESETS)}")

    @property
    def control_dt(self) -> float:
        return self.timestep * self.substeps

    def replace(self, **changes: Any) -> EnvConfig:
        """A validated copy with dotted keys changed: ``replace(**{"terrain.levels": 4})``."""
        return from_dict(_merge(to_dict(self), changes))


def play_variant(cfg: EnvConfig) -> EnvConfig:
    """The evaluation (PLAY) variant of a configuration: no domain randomisation, pushes or
    observation noise, no curriculum moves, robots spread over every level."""
    return cfg.replace(
        **{
            "randomization.enabled": False,
            "curriculum.enabled": False,
            "terrain.init_max_level": cfg.terrain.levels - 1,
        }
    )


# ----------------------------------------------------------------------------- strict loading
def _merge(d: dict, changes: Mapping[str, Any]) -> dict:
    for key, value in changes.items():
        node = d
        *parents, leaf = key.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                raise EnvConfigError(f"{key}: unknown key")
            node = node[p]
        # a gait's weight table takes any term name (the validation checks it is a term): the
        # terms off by default (weight 0, e.g. the three-legged ones) can be switched on
        open_table = parents[:2] == ["rewards", "weights"] and len(parents) == 3
        if leaf not in node and not open_table:
            raise EnvConfigError(f"{key}: unknown key")
        node[leaf] = value
    return d


_LOADER = StrictLoader(EnvConfigError)
_build = _LOADER.build


def build_section(cls: type, data: Any, where: str = "") -> Any:
    """Strictly build any configuration dataclass from a parsed YAML mapping (the loader of
    this module, for other configuration files: unknown keys and bad values name the field)."""
    return _build(cls, data, where)


def from_dict(data: Any) -> EnvConfig:
    """Validate a parsed YAML document (the layout of ``config/env.yaml``) into an EnvConfig."""
    return _build(EnvConfig, data, "")


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def to_dict(cfg: EnvConfig) -> dict:
    """Plain data (lists, dicts) of a configuration, the YAML's layout."""
    return _plain(cfg)


def default_config_path() -> Path:
    """``config/env.yaml`` beside the package (source tree) or in its ament share dir."""
    here = Path(__file__).resolve().parents[2] / "config" / CONFIG_FILE
    if here.is_file():
        return here
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("moe_loco_training")) / "config" / CONFIG_FILE
    except Exception as e:
        raise EnvConfigError(
            f"cannot find {CONFIG_FILE}: not beside the package, and {e}"
        ) from None


def load_env_config(path: str | os.PathLike[str] | None = None) -> EnvConfig:
    """Load and validate an environment YAML (the packaged ``config/env.yaml`` when None)."""
    p = Path(path) if path is not None else default_config_path()
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise EnvConfigError(f"cannot read {p}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise EnvConfigError(f"{p}: not valid YAML: {e}") from None
    return from_dict(data)
