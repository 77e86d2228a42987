"""The configuration as ROS parameters (core, no ROS): names, node split, run-time changes, and
the ROS parameter-file form of the YAML."""

import array
import re

import pytest

from moe_loco_controller.core.config import Config, ConfigError, load_config, to_dict
from moe_loco_controller.core.parameters import (
    RUNTIME_PARAMETERS,
    all_parameter_names,
    check_runtime_change,
    config_from_parameters,
    flatten,
    node_parameters,
    unknown_overrides,
)


def refused(message):
    return pytest.raises(ConfigError, match=re.escape(message))


def test_every_config_key_is_a_parameter_of_exactly_one_node_but_policy_and_namespace():
    cfg = load_config()
    controller = node_parameters(cfg, "controller")
    joystick = node_parameters(cfg, "joystick")
    assert set(controller) | set(joystick) == all_parameter_names() == set(flatten(to_dict(cfg)))
    assert set(controller) & set(joystick) == {"policy", "namespace"}
    assert controller["link.interface"] == "eth0" and controller["control.stand_kp"] == 50.0
    assert joystick["joystick.max_accel"] == [1.0, 1.0, 2.0]
    assert joystick["joystick.mapping.buttons.deadman"] == 4
    for node, names in RUNTIME_PARAMETERS.items():
        assert set(names) <= set(node_parameters(cfg, node)), node


def test_parameters_round_trip_and_errors_name_the_parameter():
    cfg = load_config()
    values = node_parameters(cfg, "controller")
    assert config_from_parameters(cfg, values) == cfg
    got = config_from_parameters(cfg, {"joystick.max_accel": array.array("d", [2.0, 2.0, 3.0])})
    assert got.joystick.logic.max_accel == (2.0, 2.0, 3.0)  # rclpy's DOUBLE_ARRAY type
    for values, message in [
        ({"control.damp_kd": 50.0}, "control.damp_kd must be <= 10"),
        ({"link.domain_id": "zero"}, "link.domain_id: expected an integer"),
        ({"control.dampkd": 1.0}, "control.dampkd: unknown parameter"),
        ({"control.stand_kp": None}, None),  # not set: the policy's gains
        ({"control.damp_kd": None}, "control.damp_kd: expected a number, got None"),
    ]:
        if message is None:
            assert config_from_parameters(cfg, values).control.stand_kp is None
            continue
        with pytest.raises(ConfigError, match=message):
            config_from_parameters(cfg, values)


def test_run_time_changes_only_where_allowed_and_valid():
    cfg = load_config()
    new = check_runtime_change(cfg, "controller", {"control.command_timeout_s": 0.3})
    assert new.control.command_timeout_s == 0.3 and cfg.control.command_timeout_s == 0.5
    with refused("control.command_timeout_s must be a finite number > 0"):
        check_runtime_change(cfg, "controller", {"control.command_timeout_s": -1.0})
    with refused("link.watchdog_periods: read-only while the node runs"):
        check_runtime_change(cfg, "controller", {"link.watchdog_periods": 5.0})
    with refused("joystick.deadzone: read-only"):  # not the controller's
        check_runtime_change(cfg, "controller", {"joystick.deadzone": 0.1})
    new = check_runtime_change(cfg, "joystick", {"joystick.deadzone": 0.1})
    assert new.joystick.logic.deadzone == 0.1
    with refused("joystick.deadzone must be in"):
        check_runtime_change(cfg, "joystick", {"joystick.deadzone": 1.5})
    with refused("joystick.max_accel: expected 3 numbers"):
        check_runtime_change(cfg, "joystick", {"joystick.max_accel": [1.0, 1.0]})


def test_unknown_overrides_are_typos_not_ros_or_the_other_node_s_parameters():
    given = {"link.interface", "joystick.deadzone", "use_sim_time", "qos_overrides./x.depth"}
    assert unknown_overrides(given) == []
    assert unknown_overrides({"link.interfce", "use_sim_time"}) == ["link.interfce"]


def test_the_packaged_file_is_a_ros_parameter_file_and_plain_files_still_load(tmp_path):
    import yaml

    from moe_loco_controller.core.config import default_config_path

    doc = yaml.safe_load(default_config_path().read_text())
    assert list(doc) == ["/**"] and list(doc["/**"]) == ["ros__parameters"]
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(to_dict(load_config())))
    assert load_config(plain) == load_config()
    # node sections merge in order, nested or dotted names
    ros = tmp_path / "ros.yaml"
    ros.write_text(
        "/**:\n  ros__parameters:\n    link: {interface: lo}\n"
        "moe_loco_controller:\n  ros__parameters:\n    link.domain_id: 1\n"
        "    control.damp_kd: 3.0\n"
    )
    cfg = load_config(ros)
    assert (cfg.link.interface, cfg.link.domain_id, cfg.control.damp_kd) == ("lo", 1, 3.0)
    assert cfg.control.stand_kp == Config().control.stand_kp  # untouched: the defaults


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/**:\n  ros__parameters:\n    link: {interfac: lo}\n", "link.interfac: unknown key"),
        ("/**:\n  ros__parameters: {}\n  extra: 1\n", "holds only"),
        ("/**:\n  ros__parameters: [1]\n", "expected a mapping"),
        ("/**:\n  ros__parameters:\n    link: 1\n    link.domain_id: 1\n", "a value and"),
    ],
)
def test_bad_ros_parameter_files_name_the_problem(tmp_path, text, message):
    p = tmp_path / "params.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(p)
