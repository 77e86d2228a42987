"""Every policy shipped under policies/ loads through the deploy runtime (its metadata is the
contract's), steps to finite actions, and comes with its card and training curves."""

from pathlib import Path

import numpy as np
import pytest

from moe_loco_controller.core.policy import PolicyRuntime

POLICIES = Path(__file__).resolve().parents[4] / "policies"
SHIPPED = sorted(POLICIES.glob("*.onnx"))


def test_policies_are_shipped():
    assert SHIPPED, f"no policy under {POLICIES}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_a_shipped_policy_loads_steps_and_has_its_card(path):
    runtime = PolicyRuntime(path)
    meta = runtime.metadata
    assert meta.training["iterations"] > 0 and meta.training["simulator"].startswith("mujoco")
    step = runtime.step(
        np.zeros(meta.observation.proprio_dim, np.float32),
        np.zeros(meta.observation.command_dim, np.float32),
    )
    assert np.all(np.isfinite(step.actions)) and step.actions.shape == (meta.num_joints,)
    card = path.with_suffix(".md")
    assert card.is_file(), f"{path.name} has no card ({card.name})"
    text = card.read_text()
    assert path.name in text and "Benchmark" in text
    assert (path.parent / f"{path.stem}_curves.png").is_file()
