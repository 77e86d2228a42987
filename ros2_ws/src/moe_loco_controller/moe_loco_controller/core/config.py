"""The controller's YAML configuration (``config/controller.yaml``): loaded once, validated.

Every error names the offending key (``control.damp_kd: ...``); unknown keys are errors, so a typo
never silently falls back to a default. The file may be a plain mapping of the sections or a ROS
parameter file (``/**:`` or ``<node name>:`` sections, each ``ros__parameters:``, nested or dotted
names), which is what the packaged one is, so that ``--ros-args --params-file`` takes it too; a
parameter file's sections are merged in order (:func:`unwrap_ros_parameters`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moe_loco_controller.core.controller import ControllerConfig
from moe_loco_controller.core.go2 import ROBOT_DOMAIN_ID, SIM_INTERFACE
from moe_loco_controller.core.joystick import JoyMapping, JoystickConfig
from moe_loco_controller.core.ros_names import check_namespace
from moe_loco_controller.core.safety import SafetyLimits
from moe_loco_controller.core.strict_yaml import load_strict_yaml
from moe_loco_controller.core.velocity_source import CmdVelConfig

CONFIG_FILE = "controller.yaml"


class ConfigError(ValueError):
    """A configuration the controller refuses."""


CRC_POLICIES = ("verify", "off")


def is_simulator_link(interface: str, domain_id: int) -> bool:
    """A link that cannot reach the robot: the loopback interface on a domain other than the
    robot's (Unitree's simulator convention is domain 1 on ``lo``)."""
    return interface == SIM_INTERFACE and domain_id != ROBOT_DOMAIN_ID


@dataclass(frozen=True)
class LinkConfig:
    source: str = "unitree"
    domain_id: int = 0
    interface: str = "eth0"
    command_rate_hz: float = 500.0
    release_sport_mode: bool = True
    other_publisher_check_s: float = 1.0
    watchdog_periods: float = 3.0
    """The LowCmd_ stream sends damping once the newest step is older than this many control
    periods (a stalled or dead control loop)."""
    crc: str = "verify"
    """rt/lowstate CRC policy: ``verify`` (a frame with a wrong CRC is counted and dropped) or
    ``off`` (frames are used unchecked: Unitree's MuJoCo simulator sends ``crc`` 0), allowed only on
    a simulator link (:func:`is_simulator_link`), never on the robot's."""

    def __post_init__(self) -> None:
        if self.crc not in CRC_POLICIES:
            raise ValueError(f"link.crc must be one of {list(CRC_POLICIES)}, got {self.crc!r}")
        if self.crc == "off" and not is_simulator_link(self.interface, self.domain_id):
            raise ValueError(
                "link.crc: 'off' is allowed only on a simulator link (interface "
                f"{SIM_INTERFACE!r}, domain_id != {ROBOT_DOMAIN_ID}); this link is interface "
                f"{self.interface!r}, domain_id {self.domain_id}: the robot's frames are verified"
            )
        if not 1.0 <= self.watchdog_periods <= 10.0:
            raise ValueError(f"link.watchdog_periods must be in 1..10, got {self.watchdog_periods}")
        if self.source not in ("unitree", "mirror"):
            raise ValueError(f"link.source must be 'unitree' or 'mirror', got {self.source!r}")
        if not 0 <= self.domain_id <= 232:
            raise ValueError(f"link.domain_id must be in 0..232, got {self.domain_id}")
        if not 50 <= self.command_rate_hz <= 2000:
            raise ValueError(
                f"link.command_rate_hz must be in 50..2000, got {self.command_rate_hz}"
            )
        if self.other_publisher_check_s < 0:
            raise ValueError("link.other_publisher_check_s must be >= 0")


@dataclass(frozen=True)
class JoystickNodeConfig:
    source: str = "joy"
    rate_hz: float = 50.0
    logic: JoystickConfig = field(default_factory=JoystickConfig)
    mapping: JoyMapping = field(default_factory=JoyMapping)

    def __post_init__(self) -> None:
        if self.source not in ("joy", "go2_remote"):
            raise ValueError(f"joystick.source must be 'joy' or 'go2_remote', got {self.source!r}")
        if not 1 <= self.rate_hz <= 1000:
            raise ValueError(f"joystick.rate_hz must be in 1..1000, got {self.rate_hz}")


@dataclass(frozen=True)
class Config:
    policy: str = ""
    device: str = "cpu"
    namespace: str = "moe_loco"
    link: LinkConfig = field(default_factory=LinkConfig)
    control: ControllerConfig = field(default_factory=ControllerConfig)
    joystick: JoystickNodeConfig = field(default_factory=JoystickNodeConfig)
    cmd_vel: CmdVelConfig = field(default_factory=CmdVelConfig)

    def replace(self, **changes: Any) -> Config:
        """A validated copy with dotted keys changed: ``replace(**{"link.interface": "lo"})``."""
        d = to_dict(self)
        for key, value in changes.items():
            node = d
            *parents, leaf = key.split(".")
            for p in parents:
                node = node[p]
            if leaf not in node:
                raise ConfigError(f"{key}: unknown key")
            node[leaf] = value
        return from_dict(d)


def _typed(value: Any, kind: type, where: str) -> Any:
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {_short(value)}")
        try:
            number = float(value)
        except OverflowError:  # a YAML integer beyond float64 (10**400)
            raise ConfigError(f"{where}: expected a finite number, got {_short(value)}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return number
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_short(value)}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_short(value)}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_short(value)}")
        return value
    raise AssertionError(kind)


def _short(value: Any) -> str:
    """``repr(value)``, at most 80 characters."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # deep nesting; an int beyond repr's digit limit
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def parse_yaml(text: str, source: str) -> Any:
    """A YAML document, strictly (no repeated key); ``ConfigError`` naming ``source`` else."""
    try:
        return load_strict_yaml(text)
    except ValueError as e:
        raise ConfigError(f"{source}: {e}") from None


def _section(data: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key (known: {sorted(allowed)})")
    return data


_SCALARS = {
    LinkConfig: {
        "source": str,
        "domain_id": int,
        "interface": str,
        "command_rate_hz": float,
        "release_sport_mode": bool,
        "other_publisher_check_s": float,
        "watchdog_periods": float,
        "crc": str,
    },
    SafetyLimits: {f.name: float for f in dataclasses.fields(SafetyLimits)},
    ControllerConfig: {
        "stand_duration_s": float,
        "stand_kp": float,
        "stand_kd": float,
        "stand_integral_gain": float,
        "stand_integral_limit": float,
        "damp_kd": float,
        "command_timeout_s": float,
        "command_lost_damp_s": float,
    },
    JoystickConfig: {
        "deadzone": float,
        "debounce_s": float,
        "lost_timeout_s": float,
        "lost_damp_s": float,
    },
    CmdVelConfig: {"enabled": bool, "topic": str, "stamped": bool, "timeout_s": float},
    JoyMapping: {
        "axis_vx": int,
        "axis_vy": int,
        "axis_wz": int,
        "sign_vx": float,
        "sign_vy": float,
        "sign_wz": float,
    },
}


def _build(cls: type, data: dict[str, Any], where: str, **extra: Any) -> Any:
    kwargs: dict[str, Any] = dict(extra)
    for key, kind in _SCALARS[cls].items():
        if key in data:
            v = data[key]
            nullable = cls is ControllerConfig and key in ("stand_kp", "stand_kd")
            kwargs[key] = None if (v is None and nullable) else _typed(v, kind, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e)) from None


def from_dict(data: Any) -> Config:
    """Validate a parsed YAML document into a :class:`Config`."""
    top = _section(
        data,
        "",
        {"policy", "device", "namespace", "link", "control", "safety", "joystick", "cmd_vel"},
    )
    link = _build(LinkConfig, _section(top.get("link"), "link", set(_SCALARS[LinkConfig])), "link")
    safety = _build(
        SafetyLimits, _section(top.get("safety"), "safety", set(_SCALARS[SafetyLimits])), "safety"
    )
    control = _build(
        ControllerConfig,
        _section(top.get("control"), "control", set(_SCALARS[ControllerConfig])),
        "control",
        safety=safety,
    )
    js = _section(
        top.get("joystick"),
        "joystick",
        {"source", "rate_hz", "max_accel", *_SCALARS[JoystickConfig], "mapping"},
    )
    accel = js.get("max_accel", [1.0, 1.0, 2.0])
    if not isinstance(accel, list) or len(accel) != 3:
        raise ConfigError(f"joystick.max_accel: expected 3 numbers, got {accel!r}")
    accel = tuple(_typed(a, float, "joystick.max_accel") for a in accel)
    logic = _build(JoystickConfig, js, "joystick", max_accel=accel)
    mp = _section(js.get("mapping"), "joystick.mapping", {*_SCALARS[JoyMapping], "buttons"})
    buttons = mp.get("buttons")
    extra = {}
    if buttons is not None:
        if not isinstance(buttons, dict):
            raise ConfigError("joystick.mapping.buttons: expected a mapping of name: index")
        extra["buttons"] = {
            str(k): _typed(v, int, f"joystick.mapping.buttons.{k}") for k, v in buttons.items()
        }
    mapping = _build(JoyMapping, mp, "joystick.mapping", **extra)
    try:
        joystick = JoystickNodeConfig(
            source=_typed(js.get("source", "joy"), str, "joystick.source"),
            rate_hz=_typed(js.get("rate_hz", 50.0), float, "joystick.rate_hz"),
            logic=logic,
            mapping=mapping,
        )
    except ValueError as e:
        raise ConfigError(str(e)) from None
    cmd_vel = _build(
        CmdVelConfig,
        _section(top.get("cmd_vel"), "cmd_vel", set(_SCALARS[CmdVelConfig])),
        "cmd_vel",
    )
    device = _typed(top.get("device", "cpu"), str, "device")
    if device not in ("cpu", "cuda", "tensorrt", "auto"):
        raise ConfigError(f"device: must be cpu, cuda, tensorrt or auto, got {device!r}")
    policy = top.get("policy", "")
    namespace = _typed(top.get("namespace", "moe_loco"), str, "namespace")
    try:
        check_namespace(namespace)
    except ValueError as e:
        raise ConfigError(f"namespace: {e}") from None
    return Config(
        policy=_typed("" if policy is None else policy, str, "policy"),  # false is no path
        device=device,
        namespace=namespace,
        link=link,
        control=control,
        joystick=joystick,
        cmd_vel=cmd_vel,
    )


ROS_PARAMETERS_KEY = "ros__parameters"


def _merge(into: dict[str, Any], data: dict[str, Any], where: str) -> None:
    for key, value in data.items():
        if not isinstance(key, str):
            raise ConfigError(f"{where}: parameter names are strings, got {_short(key)}")
        node = into
        *parents, leaf = key.split(".")
        for p in parents:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{where}.{key}: {p} is a value and a section")
            node = child
        if isinstance(value, dict):
            child = node.setdefault(leaf, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{where}.{key}: a value and a section")
            _merge(child, value, f"{where}.{key}")
        else:
            node[leaf] = value


def unwrap_ros_parameters(data: Any) -> Any:
    """A ROS parameter file's document as the plain mapping :func:`from_dict` takes (other
    documents unchanged): every top-level key a node pattern whose value holds only
    ``ros__parameters``; their parameters (nested or dotted names) merged in file order."""
    if not isinstance(data, dict) or not any(
        isinstance(v, dict) and ROS_PARAMETERS_KEY in v for v in data.values()
    ):
        return data
    merged: dict[str, Any] = {}
    for node, section in data.items():
        if not isinstance(section, dict) or set(section) != {ROS_PARAMETERS_KEY}:
            raise ConfigError(
                f"{node}: a ROS parameter file holds only '<node>: {{{ROS_PARAMETERS_KEY}: ...}}' "
                "sections"
            )
        params = section[ROS_PARAMETERS_KEY]
        if params is None:
            continue
        if not isinstance(params, dict):
            raise ConfigError(f"{node}.{ROS_PARAMETERS_KEY}: expected a mapping")
        _merge(merged, params, f"{node}.{ROS_PARAMETERS_KEY}")
    return merged


def to_dict(cfg: Config) -> dict[str, Any]:
    """The YAML-shaped dictionary of a :class:`Config` (``from_dict(to_dict(c)) == c``)."""
    c = cfg.control
    return {
        "policy": cfg.policy,
        "device": cfg.device,
        "namespace": cfg.namespace,
        "link": dataclasses.asdict(cfg.link),
        "control": {k: getattr(c, k) for k in _SCALARS[ControllerConfig]},
        "safety": dataclasses.asdict(c.safety),
        "joystick": {
            "source": cfg.joystick.source,
            "rate_hz": cfg.joystick.rate_hz,
            **{k: getattr(cfg.joystick.logic, k) for k in _SCALARS[JoystickConfig]},
            "max_accel": list(cfg.joystick.logic.max_accel),
            "mapping": {
                **{k: getattr(cfg.joystick.mapping, k) for k in _SCALARS[JoyMapping]},
                "buttons": dict(cfg.joystick.mapping.buttons),
            },
        },
        "cmd_vel": dataclasses.asdict(cfg.cmd_vel),
    }


def default_config_path() -> Path:
    """``config/controller.yaml`` beside the package (source tree) or in its ament share dir."""
    here = Path(__file__).resolve().parents[2] / "config" / CONFIG_FILE
    if here.is_file():
        return here
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("moe_loco_controller")) / "config" / CONFIG_FILE
    except Exception as e:
        raise ConfigError(f"cannot find {CONFIG_FILE}: not beside the package, and {e}") from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the controller YAML (the packaged default when ``path`` is None)."""
    p = Path(path) if path is not None else default_config_path()
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config {p}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    data = parse_yaml(text, str(p))
    try:
        return from_dict(unwrap_ros_parameters(data))
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
