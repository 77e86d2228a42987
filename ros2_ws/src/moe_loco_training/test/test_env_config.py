"""config/env.yaml: equals the defaults, loads strictly, and every error names its field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from moe_loco_training.env.config import (
    EnvConfig,
    EnvConfigError,
    default_config_path,
    from_dict,
    load_env_config,
    to_dict,
)
from moe_loco_training.env.rewards import RECIPE_WEIGHTS

CONFIG = Path(__file__).resolve().parents[1] / "config" / "env.yaml"


def doc() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def test_the_packaged_yaml_equals_the_defaults():
    assert default_config_path() == CONFIG
    cfg = load_env_config()
    assert to_dict(cfg) == to_dict(EnvConfig())
    assert cfg.num_envs == 256 and cfg.substeps == 4 and cfg.control_dt == pytest.approx(0.02)
    assert cfg.control.kp == 40.0 and cfg.control.kd == 0.5
    assert {g: dict(w) for g, w in cfg.rewards.weights.items()} == {
        g: dict(w) for g, w in RECIPE_WEIGHTS.items()
    }
    assert len(cfg.terrain.tasks) == 10


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("num_envz",), 3, r"^num_envz: unknown key"),
        (("terrain", "tile_lenght"), 3.0, r"^terrain\.tile_lenght: unknown key"),
        (
            ("rewards", "weights", "bipedal", "foot_clearance"),
            1.0,
            r"^rewards\.weights\.bipedal\.foot_clearance: unknown reward term",
        ),
        (
            ("terrain", "tasks", "backflip_q"),
            {"kind": "plane", "gait": "quadrupedal"},
            r"^terrain\.tasks\.backflip_q: unknown task",
        ),
        (("terrain", "tasks", "bar_q", "hieght"), 0.1, r"terrain\.tasks\.bar_q\.hieght: unknown"),
        (("terrain", "levels"), "ten", r"^terrain\.levels: expected an integer"),
        (("randomization", "friction"), [1.0, 0.5], r"randomization\.friction: low 1\.0 > high"),
        (("randomization", "friction"), [0.5], r"randomization\.friction: expected 2 values"),
        (("control", "kp"), -1.0, r"control\.kp must be > 0"),
        (("commands", "ranges", "bipedal", "vx"), [1.0, -1.0], r"ranges\.bipedal\.vx: low"),
        (("terrain", "tasks", "bar_q", "gait"), "tripedal", r"terrain\.tasks\.bar_q\.gait must"),
        (("contact",), "soft", r"contact must be one of"),
        (("randomization", "obs_noise", "lidar"), 0.1, r"obs_noise\.lidar: unknown term"),
        (("episode_length_s",), float("nan"), r"episode_length_s: expected a finite number"),
    ],
)
def test_bad_values_are_refused_naming_the_field(path, value, match):
    d = doc()
    node = d
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(EnvConfigError, match=match):
        from_dict(d)


def test_a_tile_that_does_not_fit_names_its_task(tmp_path):
    from moe_loco_training.env import MultitaskEnv

    d = doc()
    d["terrain"]["tasks"]["stair_q"]["count"] = 3  # three up-down stair sets in 8 m
    d["num_envs"] = 2
    p = tmp_path / "env.yaml"
    p.write_text(yaml.safe_dump(d))
    cfg = load_env_config(p)
    with pytest.raises(EnvConfigError, match=r"terrain\.tasks\.stair_q: level 0: .* need"):
        MultitaskEnv(cfg)


def test_replace_with_dotted_keys_validates():
    cfg = EnvConfig().replace(**{"terrain.levels": 4, "num_envs": 8})
    assert cfg.terrain.levels == 4 and cfg.num_envs == 8
    with pytest.raises(EnvConfigError, match=r"terrain\.levles: unknown key"):
        EnvConfig().replace(**{"terrain.levles": 4})
    with pytest.raises(EnvConfigError, match="init_max_level"):
        EnvConfig().replace(**{"terrain.levels": 2})  # init_max_level 3 no longer fits


def test_unreadable_or_invalid_files(tmp_path):
    with pytest.raises(EnvConfigError, match="cannot read"):
        load_env_config(tmp_path / "missing.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("num_envs: [1, 2\n")
    with pytest.raises(EnvConfigError, match="not valid YAML"):
        load_env_config(p)


def test_play_variant_switches_randomisation_and_curriculum_off():
    from moe_loco_training.env import play_variant

    play = play_variant(load_env_config())
    assert not play.randomization.enabled and not play.curriculum.enabled
    assert play.terrain.init_max_level == play.terrain.levels - 1
    assert play.rewards == load_env_config().rewards  # everything else unchanged
