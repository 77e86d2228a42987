import pytest
import yaml

from moe_loco_controller.core.config import (
    ConfigError,
    default_config_path,
    from_dict,
    load_config,
    to_dict,
)


def test_default_config_loads_and_roundtrips():
    cfg = load_config()
    assert default_config_path().name == "controller.yaml"
    assert cfg.link.command_rate_hz == 500.0 and cfg.control.safety.quad_roll == 1.0
    assert from_dict(to_dict(cfg)) == cfg
    assert cfg.replace(**{"link.interface": "lo", "link.domain_id": 1}).link.interface == "lo"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"control": {"damp_kd": -1}}, "control.damp_kd"),
        ({"control": {"damp_kd": "soft"}}, "control.damp_kd: expected a number"),
        ({"contrl": {}}, "contrl: unknown key"),
        ({"safety": {"quad_rol": 1.0}}, "safety.quad_rol: unknown key"),
        ({"link": {"source": "serial"}}, "link.source"),
        ({"link": {"command_rate_hz": 10}}, "link.command_rate_hz"),
        ({"link": {"domain_id": True}}, "link.domain_id: expected an integer"),
        ({"joystick": {"max_accel": [1, 2]}}, "joystick.max_accel"),
        ({"joystick": {"mapping": {"buttons": {"deadman": 4}}}}, "missing"),
        ({"joystick": {"source": "keyboard"}}, "joystick.source"),
        ({"device": "tpu"}, "device"),
        ({"safety": {"stale_state_periods": 0}}, "safety.stale_state_periods"),
    ],
)
def test_bad_values_are_named(change, message):
    d = to_dict(load_config())
    for k, v in change.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            d[k] = {**d[k], **v}
        else:
            d[k] = v
    with pytest.raises(ConfigError, match=message):
        from_dict(d)


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("control: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    notmap = tmp_path / "list.yaml"
    notmap.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(notmap)


def test_a_partial_file_takes_defaults_for_the_rest(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("link: {interface: lo, domain_id: 1}\ncontrol: {stand_kp: 60.0}\n")
    cfg = load_config(p)
    assert cfg.link.interface == "lo" and cfg.control.stand_kp == 60.0
    assert cfg.control.damp_kd == 2.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"control:\n  damp_kd: 1{'0' * 400}\n", "control.damp_kd: expected a finite number"),
        ("namespace: 'bad ns!'\n", "namespace: invalid ROS namespace 'bad ns!'"),
        ("namespace: 1abc\n", "namespace: invalid ROS namespace '1abc'"),
        ("policy: false\n", "policy: expected a string, got False"),
        ("device: cpu\ndevice: cuda\n", "duplicate key 'device'"),
        ("link:\n  interface: lo\n  interface: eth0\n", "duplicate key 'interface'"),
        ("control:\n  damp_kd: 50\n", "control.damp_kd must be <= 10"),
        ("link:\n  watchdog_periods: 0.5\n", "link.watchdog_periods"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "not valid YAML"),
    ],
)
def test_hostile_config_files_are_config_errors(tmp_path, text, message):
    p = tmp_path / "controller.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert message in str(e.value) and str(p) in str(e.value)


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path):
    p = tmp_path / "controller.yaml"
    p.write_bytes(b"namespace: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(p)


def test_policy_null_is_the_newest_policy_and_a_good_namespace_passes(tmp_path):
    p = tmp_path / "controller.yaml"
    p.write_text("policy: null\nnamespace: /robot_1/moe_loco\n")
    cfg = load_config(p)
    assert cfg.policy == "" and cfg.namespace == "/robot_1/moe_loco"
