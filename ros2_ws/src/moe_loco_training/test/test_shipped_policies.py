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


@pytest.mark.parametrize("name", ["moe_loco_go2_v2_plane_stand", "moe_loco_go2_v3_baffle"])
def test_v2_and_v3_stand_up_on_the_bipedal_command_through_the_controller_core(name):
    """v2's claim (and v3's, which keeps it), on the deploy path (the ONNX file in the
    controller core, lockstep sim): after RUN on the bipedal track it is on its rear legs within
    1 s and still there at 5 s."""
    from moe_loco_training.benchmark.runner import BenchmarkConfig, run_trial_traced

    policy = POLICIES / f"{name}.onnx"
    result, trace = run_trial_traced(policy, "walk_b", 0, BenchmarkConfig(time_cap_s=5.0))
    assert result.outcome == "time_cap", result  # neither terminated nor damped
    w, x, y, z = trace.base_quat.T
    nose_up = 2.0 * (x * z - w * y)  # z of the base's x axis
    t_run = trace.t - BenchmarkConfig().operator.run_request_s
    up = t_run[nose_up > 0.9]
    assert up.size and up[0] < 1.0, f"on the rear legs only after {up[:1]} s"
    assert nose_up[-1] > 0.9 and trace.base_height[-1] > 0.35


def test_the_v3_policy_crawls_the_baffle_track_through_the_controller_core():
    """v3's claim: one seeded trial of the benchmark's Baffle (q) track (Table II's 22 cm
    baffles) succeeds through the controller core (v2 got stuck at 4.8 m in all 10 trials)."""
    from moe_loco_training.benchmark.runner import BenchmarkConfig, run_trial

    result = run_trial(POLICIES / "moe_loco_go2_v3_baffle.onnx", "baffle_q", 0, BenchmarkConfig())
    assert result.outcome == "success", result
