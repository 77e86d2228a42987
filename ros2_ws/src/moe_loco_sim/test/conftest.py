"""Fixtures of the sim tests: contract-conforming policy files built without torch (the
controller tests' ``policy_factory``)."""

import sys
from pathlib import Path

import numpy as np
import pytest

_CONTROLLER_TESTS = Path(__file__).resolve().parents[2] / "moe_loco_controller" / "test"
sys.path.insert(0, str(_CONTROLLER_TESTS))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bridge_helpers
import policy_factory  # noqa: E402


@pytest.fixture(scope="session")
def zero_policy(tmp_path_factory):
    """Actions always 0: in RUN the PD targets are the default pose at the policy's 40 / 0.5."""
    return policy_factory.write_policy(tmp_path_factory.mktemp("policies") / "zero.onnx")


@pytest.fixture(scope="session")
def random_linear_policy(tmp_path_factory):
    """Actions = proprio @ W with seeded random W: the robot moves (and falls) in RUN."""
    meta = policy_factory.metadata()
    rng = np.random.default_rng(42)
    w = rng.normal(0.0, 0.3, (meta.observation.proprio_dim, meta.num_joints))
    return policy_factory.write_policy(
        tmp_path_factory.mktemp("policies") / "random_linear.onnx", weights=w
    )
