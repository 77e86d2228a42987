"""Fixtures of the controller tests: policy files built by ``policy_factory`` (no torch)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import policy_factory

from moe_loco_controller.core import go2


@pytest.fixture
def make_policy(tmp_path):
    """``make_policy(**kwargs) -> Path``: a test policy file (see policy_factory.write_policy)."""
    counter = iter(range(1000))

    def make(**kwargs):
        return policy_factory.write_policy(tmp_path / f"policy_{next(counter)}.onnx", **kwargs)

    return make


@pytest.fixture
def urdf_order():
    return go2.URDF_JOINT_NAMES
