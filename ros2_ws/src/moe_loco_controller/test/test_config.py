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
