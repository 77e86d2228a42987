"""Launch files: they must compile, and what they pass the executables must parse.

``ros2 launch`` (launch, launch_ros) is not installable here, so the files are kept thin and the
command line they build comes from ``moe_loco_controller.launch_args``, checked here against the
executables' own parser.
"""

from pathlib import Path

import pytest

from moe_loco_controller.launch_args import LAUNCH_ARGUMENTS, node_arguments, optional_arguments
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
    args = parse_args(node_arguments(values) + optional_arguments(values))
    cfg = resolve_config(args)
    assert (cfg.link.interface, cfg.link.domain_id, cfg.joystick.source) == ("eth0", 0, "joy")
    assert cfg.link.release_sport_mode


def test_sim_launch_arguments_parse_to_the_sim_config(tmp_path):
    values = {**defaults(), "sim": "true", "joystick": "go2_remote", "policy": "p.onnx"}
    args = parse_args(node_arguments(values) + optional_arguments(values))
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
