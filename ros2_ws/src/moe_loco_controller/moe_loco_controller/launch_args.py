"""The command line the launch files give the node executables, built in one place.

``launch/go2.launch.py`` calls :func:`node_arguments` with launch substitutions; tests call it with
plain strings and parse the result with ``moe-loco-bringup``'s own parser, so the launch file and
the executables cannot drift apart (``ros2 launch`` itself cannot run on machines without ROS).
"""

from __future__ import annotations

from typing import Any

LAUNCH_ARGUMENTS = {
    "policy": ("", "policy .onnx file (empty: the newest under policies/)"),
    "interface": ("eth0", "network interface of the robot link"),
    "domain": ("0", "DDS domain of the robot link (the robot: 0)"),
    "joystick": ("joy", "joystick source: joy (sensor_msgs/Joy), go2_remote or none"),
    "sim": ("false", "true: talk to the simulator (domain 1 on lo, no sport-mode release)"),
    "config": ("", "controller YAML (empty: the packaged config/controller.yaml)"),
}
"""Launch argument -> (default, description)."""


def node_arguments(values: dict[str, Any]) -> list[Any]:
    """``[--policy, <policy>, ...]`` for the node executables; values may be substitutions."""
    out: list[Any] = []
    for name in ("interface", "domain", "joystick", "sim"):
        out += [f"--{name}", values[name]]
    return out


def optional_arguments(values: dict[str, str]) -> list[str]:
    """``--policy``/``--config`` only when given (plain strings: the launch file resolves them)."""
    out = []
    for name in ("policy", "config"):
        if values.get(name):
            out += [f"--{name}", values[name]]
    return out


REPLAY_LAUNCH_ARGUMENTS = {
    "bag": ("", "the rosbag2 directory (or .mcap file) to replay"),
    "mode": ("node", "node: the real controller node over ROS, in real time; core: fast"),
    "policy": ("", "policy .onnx (empty: the one the bag names)"),
    "config": ("", "controller YAML the run used (empty: the packaged one)"),
}
"""``launch/replay.launch.py``'s arguments -> (default, description)."""


def replay_arguments(values: dict[str, str]) -> list[str]:
    """``moe-loco-replay`` arguments from the replay launch file's values."""
    if not values.get("bag"):
        raise ValueError("replay needs bag:=<rosbag2 directory or .mcap file>")
    return [values["bag"], "--mode", values["mode"], *optional_arguments(values)]
