"""Launch files: they must compile, and what they pass the executables must parse.

``ros2 launch`` (launch, launch_ros) is not installable here, so the files are kept thin and the
command line they build comes from ``moe_loco_controller.launch_args``, checked here against the
executables' own parser.
"""

from pathlib import Path

import pytest

from moe_loco_controller.launch_args import LAUNCH_ARGUMENTS, node_arguments, parameter_files
from moe_loco_controller.nodes.bringup import parse_args, resolve_config

ROOT = Path(__file__).resolve().parents[4]
LAUNCH_FILES = sorted(
    [*(ROOT / "launch").glob("*.launch.py"), *(ROOT / "ros2_ws/src").glob("*/launch/*.launch.py")]
)


def test_there_are_launch_files():
    names = {p.relative_to(ROOT).as_posix() for p in LAUNCH_FILES}
    assert "ros2_ws/src/moe_loco_controller/launch/go2.launch.py" in names
    assert "launch/go2.launch.py" in names
    assert {"launch/sim.launch.py", "launch/replay.launch.py"} <= names
    assert "ros2_ws/src/moe_loco_sim/launch/sim.launch.py" in names


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_launch_file_compiles_and_declares_generate(path):
    source = path.read_text()
    compile(source, str(path), "exec")
    assert "def generate_launch_description" in source


def defaults():
    return {name: default for name, (default, _) in LAUNCH_ARGUMENTS.items()}


def test_default_launch_arguments_parse_to_the_robot_config():
    values = defaults()
    args = parse_args(node_arguments(values))
    cfg = resolve_config(args)
    assert (cfg.link.interface, cfg.link.domain_id, cfg.joystick.source) == ("eth0", 0, "joy")
    assert parameter_files(values, "share/config/controller.yaml") == [
        "share/config/controller.yaml"
    ]
    assert parameter_files({**values, "config": "mine.yaml"}, "x") == ["mine.yaml"]
    assert cfg.link.release_sport_mode


def test_sim_launch_arguments_parse_to_the_sim_config(tmp_path):
    values = {**defaults(), "sim": "true", "joystick": "go2_remote", "policy": "p.onnx"}
    args = parse_args(node_arguments(values))
    cfg = resolve_config(args)
    assert (cfg.link.interface, cfg.link.domain_id) == ("lo", 1)
    assert not cfg.link.release_sport_mode
    assert cfg.policy == "p.onnx" and cfg.joystick.source == "go2_remote"


def test_bad_launch_values_are_refused():
    with pytest.raises(SystemExit):
        parse_args(node_arguments({**defaults(), "sim": "maybe"}))
    with pytest.raises(SystemExit):
        parse_args(node_arguments({**defaults(), "domain": "zero"}))


def test_sim_launch_builds_a_bridge_command_line_the_bridge_parses():
    from moe_loco_sim.bridge import parse_args as bridge_args
    from moe_loco_sim.launch_args import SIM_LAUNCH_ARGUMENTS, bridge_arguments

    values = {name: default for name, (default, _) in SIM_LAUNCH_ARGUMENTS.items()}
    a = bridge_args(bridge_arguments(values))
    assert (a.terrain, a.contact, a.domain, a.interface, a.viewer) == (
        "plane", "menagerie", 1, "lo", False
    )  # fmt: skip
    a = bridge_args(bridge_arguments({**values, "terrain": "mixed", "viewer": "true"}))
    assert a.terrain == "mixed" and a.viewer
    with pytest.raises(SystemExit):  # an unknown terrain is refused by the bridge's parser
        bridge_args(bridge_arguments({**values, "terrain": "moon"}))
    # the sim launch file shares the controller's arguments (without sim, which it forces)
    assert not set(SIM_LAUNCH_ARGUMENTS) & set(LAUNCH_ARGUMENTS)


def test_replay_launch_builds_a_command_line_replay_parses():
    from moe_loco_controller.launch_args import REPLAY_LAUNCH_ARGUMENTS, replay_arguments
    from moe_loco_controller.nodes.replay import parse_args as replay_args

    values = {name: default for name, (default, _) in REPLAY_LAUNCH_ARGUMENTS.items()}
    with pytest.raises(ValueError, match="bag:="):
        replay_arguments(values)
    a = replay_args(replay_arguments({**values, "bag": "runs/x/bag", "policy": "p.onnx"}))
    assert (str(a.bag), a.mode, str(a.policy), a.config) == ("runs/x/bag", "node", "p.onnx", None)
    with pytest.raises(SystemExit):
        replay_args(replay_arguments({**values, "bag": "b", "mode": "fast"}))


def test_the_launch_parameter_file_loads_into_real_nodes_with_the_arguments_on_top(make_policy):
    """What go2.launch.py starts: each node given the packaged parameter file (``parameters=``,
    i.e. ``--ros-args --params-file``) and the launch arguments; the arguments win."""
    import rclpy

    from moe_loco_controller.core.config import default_config_path, load_config
    from moe_loco_controller.core.policy import PolicyRuntime
    from moe_loco_controller.nodes.bringup import (
        option_changes,
        parameter_arguments,
        split_arguments,
    )
    from moe_loco_controller.nodes.controller_node import ControllerNode
    from moe_loco_controller.nodes.joystick_node import JoystickNode

    policy = make_policy()
    values = {**defaults(), "sim": "true", "policy": str(policy)}
    params = parameter_files(values, str(default_config_path()))
    argv = [
        *node_arguments(values),
        "--ros-args",
        *(a for f in params for a in ("--params-file", f)),
    ]
    ours, ros_args = split_arguments(argv)
    args = parse_args(["--link", "mirror", *ours])  # mirror: no robot link in this test
    cfg = resolve_config(args)
    rclpy.init(args=["controller_node", *ros_args, *parameter_arguments(option_changes(args))])
    try:
        controller = ControllerNode(cfg, None)
        joystick = JoystickNode(
            cfg.joystick, PolicyRuntime(policy).metadata, cfg.namespace, policy=cfg.policy
        )
        got = controller.config
        assert (got.link.interface, got.link.domain_id, got.link.release_sport_mode) == (
            "lo", 1, False
        )  # fmt: skip
        assert got.policy == str(policy) and controller.policy_name == policy.name
        packaged = load_config()
        assert got.control == packaged.control and got.cmd_vel == packaged.cmd_vel
        assert joystick.config == packaged.joystick and joystick.full_config.policy == str(policy)
        controller.destroy_node()
        joystick.destroy_node()
    finally:
        rclpy.try_shutdown()
