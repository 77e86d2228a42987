"""The command line and parameter files the launch files give the node executables, built in
one place.

``launch/go2.launch.py`` calls :func:`node_arguments` and :func:`parameter_files`; tests call them
with plain strings, parse the result with ``moe-loco-bringup``'s own parser and load the parameter
file into real nodes, so the launch file and the executables cannot drift apart (``ros2 launch``
itself cannot run on machines without ROS). Parameters go the ROS way (``parameters=[file]``,
i.e. ``--ros-args --params-file``); a launch argument left empty leaves its parameter to the file,
one that is given overrides it.
"""

from __future__ import annotations

from typing import Any

LAUNCH_ARGUMENTS = {
    "policy": ("", "policy .onnx file (empty: the newest under policies/)"),
    "interface": ("", "network interface of the robot link (empty: the parameter file's, eth0)"),
    "domain": ("", "DDS domain of the robot link (empty: the parameter file's, 0: the robot)"),
    "joystick": ("joy", "joystick source: joy (sensor_msgs/Joy), go2_remote or none"),
    "sim": ("false", "true: talk to the simulator (domain 1 on lo, no sport-mode release)"),
    "config": ("", "ROS parameter file (empty: the packaged config/controller.yaml)"),
}
"""Launch argument -> (default, description)."""


def node_arguments(values: dict[str, Any]) -> list[Any]:
    """``[--interface, <interface>, ...]`` for the node executables (empty values left out)."""
    out: list[Any] = []
    for name in ("interface", "domain", "joystick", "sim", "policy"):
        if values.get(name):
            out += [f"--{name}", values[name]]
    return out


def parameter_files(values: dict[str, str], packaged: str) -> list[str]:
    """The nodes' ``parameters=``: the ``config`` argument's file, else the packaged one."""
    return [values.get("config") or packaged]


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
