"""Fixtures of the training tests: a small real environment (MuJoCo, few robots)."""

from __future__ import annotations

import pytest

from moe_loco_training.env import MultitaskEnv, load_env_config


def small_config(num_envs: int = 10, **changes):
    """The packaged configuration with few robots, few levels and two physics threads."""
    cfg = load_env_config().replace(num_envs=num_envs, num_threads=2, **{"terrain.levels": 4})
    return cfg.replace(**changes) if changes else cfg


@pytest.fixture
def make_config():
    """:func:`small_config` as a fixture (test modules cannot import conftest by name)."""
    return small_config


@pytest.fixture
def small_env():
    """10 robots, one per task, randomisation on (fresh for each test)."""
    env = MultitaskEnv(small_config(10))
    yield env
    env.close()
