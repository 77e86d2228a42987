"""The configuration as ROS parameters (no rclpy here): names, which node declares which, which
may change at run time, and the way back to a validated :class:`~.config.Config`.

A parameter is a configuration key in dotted form (``link.interface``, ``control.damp_kd``,
``joystick.mapping.buttons.deadman``); ``config/controller.yaml`` is itself a ROS parameter file
(``/**: ros__parameters:``), so ``--ros-args --params-file`` takes it or any part of it. Every value
goes through the same validation as the YAML (:func:`~.config.from_dict`), so an error names the
parameter. The controller node declares ``policy``, ``device``, ``namespace`` and the ``link``,
``control``, ``safety`` and ``cmd_vel`` sections; the joystick node ``policy`` (whose command
ranges it scales to), ``namespace`` and ``joystick``. All are read-only except
:data:`RUNTIME_PARAMETERS`. A null in the YAML (the stand gains: the policy's own) is a parameter
that is not set.
"""

from __future__ import annotations

import array
from collections.abc import Mapping
from typing import Any

from moe_loco_controller.core.config import Config, ConfigError, from_dict, to_dict

NODE_SECTIONS: dict[str, tuple[str, ...]] = {
    "controller": ("policy", "device", "namespace", "link", "control", "safety", "cmd_vel"),
    "joystick": ("policy", "namespace", "joystick"),
}
"""Which top-level keys each node declares as parameters."""

RUNTIME_PARAMETERS: dict[str, dict[str, str]] = {
    "controller": {
        "control.command_timeout_s": "operator command older than this: zero velocity [s]",
        "cmd_vel.enabled": "take velocities from cmd_vel (rules: core/velocity_source.py)",
        "cmd_vel.timeout_s": "a Twist older than this gives zero velocity [s]",
    },
    "joystick": {
        "joystick.deadzone": "stick deadzone, in [0, 1)",
        "joystick.max_accel": "velocity rate limit [m/s^2, m/s^2, rad/s^2]",
    },
}
"""The parameters that may change while the node runs (the rest are read-only): name -> what."""

ROS_PARAMETERS = frozenset({"use_sim_time", "start_type_description_service"})
"""Parameters rclpy itself declares (or may be given) on every node."""


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted names (``{"link": {"domain_id": 0}}`` -> ``link.domain_id``);
    lists and scalars are values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def node_parameters(cfg: Config, node: str) -> dict[str, Any]:
    """The parameters ``node`` (``controller`` or ``joystick``) declares, with ``cfg``'s values
    (None: not set)."""
    sections = NODE_SECTIONS[node]
    d = to_dict(cfg)
    return flatten({k: d[k] for k in sections})


def all_parameter_names() -> frozenset[str]:
    """Every parameter of either node."""
    return frozenset(flatten(to_dict(Config())))


def config_from_parameters(base: Config, values: Mapping[str, Any]) -> Config:
    """``base`` with the parameters ``values`` (dotted names) applied, validated as the YAML is;
    :class:`ConfigError` naming the parameter otherwise."""
    d = to_dict(base)
    known = flatten(d)
    for name, value in values.items():
        if name not in known:
            raise ConfigError(f"{name}: unknown parameter")
        node = d
        *parents, leaf = name.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = list(value) if isinstance(value, list | tuple | array.array) else value
    return from_dict(d)


def unknown_overrides(names: Mapping[str, Any] | set[str] | frozenset[str]) -> list[str]:
    """Of the parameter names a node was given (``--params-file``, ``-p``), those that are no
    parameter of ours or of rclpy: typos, which must not pass silently."""
    ours = all_parameter_names()
    return sorted(
        n for n in names if n not in ours and n not in ROS_PARAMETERS and not n.startswith("qos_")
    )


def check_runtime_change(cfg: Config, node: str, values: Mapping[str, Any]) -> Config:
    """The config after a run-time change of ``values``; :class:`ConfigError` with the reason
    (naming the parameter) if a parameter may not change or a value is refused."""
    allowed = RUNTIME_PARAMETERS[node]
    for name in values:
        if name not in allowed:
            raise ConfigError(
                f"{name}: read-only while the node runs (run-time parameters: {sorted(allowed)})"
            )
    return config_from_parameters(cfg, values)
