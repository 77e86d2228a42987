"""``--ros-args --params-file`` / ``-p`` into real nodes (rclpy parses them, as on a robot), and
``moe-loco-bringup``'s precedence: its options over the parameter file over ``--config``."""

import pytest
import rclpy

from moe_loco_controller.core.config import ConfigError, default_config_path, load_config
from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_controller.nodes import bringup
from moe_loco_controller.nodes.controller_node import ControllerNode
from moe_loco_controller.nodes.joystick_node import JoystickNode

MIRROR = load_config().replace(**{"link.source": "mirror"})


def nodes_with(ros_args, policy):
    rclpy.init(args=["test", "--ros-args", *ros_args])
    try:
        controller = ControllerNode(MIRROR, policy)
        joystick = JoystickNode(MIRROR.joystick, PolicyRuntime(policy).metadata, MIRROR.namespace)
        out = (controller.config, joystick.full_config)
        controller.destroy_node()
        joystick.destroy_node()
        return out
    finally:
        rclpy.try_shutdown()


def test_a_params_file_sets_the_nodes_parameters(tmp_path, make_policy):
    f = tmp_path / "params.yaml"
    f.write_text(
        "moe_loco_controller:\n  ros__parameters:\n"
        "    control: {command_timeout_s: 0.3, damp_kd: 3.0}\n    cmd_vel: {stamped: true}\n"
        "moe_loco_joystick:\n  ros__parameters:\n    joystick.deadzone: 0.1\n"
    )
    packaged = str(default_config_path())
    controller, joystick = nodes_with(
        ["--params-file", packaged, "--params-file", str(f)], make_policy()
    )
    assert controller.control.command_timeout_s == 0.3 and controller.control.damp_kd == 3.0
    assert controller.cmd_vel.stamped and controller.link.source == "unitree"  # the file's
    assert joystick.joystick.logic.deadzone == 0.1
    assert controller.joystick == load_config().joystick  # not the controller's to take


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "control.damp_kd:=50.0"], "control.damp_kd must be <= 10"),
        (["-p", "control.damp_kd:=1"], "control.damp_kd: Trying to set parameter"),  # an int
        (["-p", "link.interfce:=lo"], "link.interfce: unknown parameter"),
        (["-p", "cmd_vel.topic:='cmd vel'"], "cmd_vel.topic: invalid ROS topic name"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(make_policy, args, message):
    with pytest.raises(ConfigError) as e:
        nodes_with(args, make_policy())
    assert message in str(e.value)


def test_bringup_refuses_a_bad_params_file_naming_the_parameter(tmp_path, make_policy, capsys):
    f = tmp_path / "params.yaml"
    f.write_text("/**:\n  ros__parameters:\n    safety: {stale_state_periods: 0.0}\n")
    argv = ["--policy", str(make_policy()), "--link", "mirror", "--joystick", "none"]
    assert bringup.main([*argv, "--duration", "0.1", "--ros-args", "--params-file", str(f)]) == 2
    assert "safety.stale_state_periods" in capsys.readouterr().err


def test_bringup_options_win_over_the_params_file(make_policy):
    args = bringup.parse_args(["--sim", "--link", "mirror", "--policy", "p.onnx"])
    extra = bringup.parameter_arguments(bringup.option_changes(args))
    assert extra[0] == "--ros-args" and "link.interface:=lo" in extra
    policy = make_policy()
    packaged = str(default_config_path())  # says eth0, domain 0
    ours, ros = bringup.split_arguments(["--sim", "--ros-args", "--params-file", packaged])
    assert ours == ["--sim"] and ros == ["--ros-args", "--params-file", packaged]
    controller, _ = nodes_with(
        ["--params-file", packaged, *bringup.parameter_arguments({"link.interface": "lo",
         "link.domain_id": 1, "policy": str(policy)})[1:]],
        policy,
    )  # fmt: skip
    assert (controller.link.interface, controller.link.domain_id) == ("lo", 1)
    assert controller.policy == str(policy)
