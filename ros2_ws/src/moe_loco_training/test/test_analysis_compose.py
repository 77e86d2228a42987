"""moe-loco-analyze compose: a composed gate's gait beside the policy as trained (Fig. 9).

A seeded random CPU-preset export (6 experts) in the lockstep sim for short runs; the gait metrics
on hand-made contact patterns; the scale set through a real controller node's service."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moe_loco_sim.lockstep import LockstepConfig
from moe_loco_training.analysis import composition as comp
from moe_loco_training.analysis.cli import main
from moe_loco_training.export import export_policy, random_policy
from moe_loco_training.models import model_config_from_preset

SCRIPT = comp.ComposeScript(stand_at=0.2, run_at=2.4, walk_at=2.6, duration=4.2, settle_s=0.2)
SHORT = ["--duration", "5.5"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    p = tmp_path_factory.mktemp("compose") / "random.onnx"
    export_policy(random_policy(0, model_config_from_preset("cpu")), p)
    return p


def test_unit_scale_is_the_policy_as_trained_and_a_mask_changes_the_motion(policy):
    cfg = LockstepConfig(joint_noise=0.02, seed=3)
    base = comp.run_composed(policy, None, SCRIPT, cfg, "as trained")
    ones = comp.run_composed(policy, np.ones(6), SCRIPT, cfg, "w = 1")
    masked = comp.run_composed(policy, [1, 2, 0, 0, 0, 0], SCRIPT, cfg, "masked")
    assert base.trace.digest() == ones.trace.digest()  # eq. 5 with w = 1 is the policy itself
    assert masked.trace.digest() != base.trace.digest()
    a = masked.trace.arrays()
    run = a["mode"] == 2  # RUN: the gate the policy applied
    assert run.any() and np.all(a["gate"][run][:, 2:] == 0.0)
    assert np.all(a["expert_scale"][run] == [1, 2, 0, 0, 0, 0])
    assert masked.clearance.shape == masked.contact.shape == (len(a["t"]), 4)
    # the feet are where the robot is: lying after the drop at the start, every foot on the ground
    lying = (a["t"] > 0.1) & (a["t"] < 0.2)
    assert masked.contact[lying].all() and np.abs(masked.clearance[lying]).max() < 0.03


def test_gait_metrics_read_a_trot_and_a_pace_off_the_contacts(policy):
    run = comp.run_composed(policy, None, SCRIPT, LockstepConfig(), "base")

    def _synthetic(contact: np.ndarray) -> comp.ComposedRun:
        """The real run's trace with made-up feet over its steps."""
        return comp.ComposedRun("synthetic", [1.0], run.trace, np.zeros(contact.shape), contact)

    t = run.t
    phase = (t * 2.0) % 1.0  # 2 Hz, duty factor 0.5
    a = phase < 0.5
    b = ~a
    trot = np.stack([a, b, b, a], axis=1)  # FR+RL, FL+RR
    m = comp.gait_metrics(_synthetic(trot), SCRIPT)
    for leg in comp.LEGS:
        assert m.duty_factor[leg] == pytest.approx(0.5, abs=0.05)
        assert m.stride_hz[leg] == pytest.approx(2.0, rel=0.02)
    assert m.diagonal_sync == pytest.approx(1.0) and m.lateral_sync == pytest.approx(-1.0)
    pace = np.stack([a, b, a, b], axis=1)  # FR+RR, FL+RL: lateral pairs out of phase too
    m = comp.gait_metrics(_synthetic(pace), SCRIPT)
    assert m.diagonal_sync == pytest.approx(-1.0)
    still = np.ones_like(trot)
    m = comp.gait_metrics(_synthetic(still), SCRIPT)
    assert all(v == 0.0 for v in m.stride_hz.values()) and np.isnan(m.diagonal_sync)
    assert all(v == 1.0 for v in m.duty_factor.values())


def test_compose_cli_writes_the_plot_and_numbers_and_the_service_gives_the_same_motion(
    policy, tmp_path, capsys
):
    out = tmp_path / "dribble"
    rc = main(["compose", str(policy), "--preset", "dribble", "--via-service", "--out", str(out)]
              + SHORT)  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "IDENTICAL" in text and "composed (dribble)" in text
    assert (out / "compose.png").read_bytes()[:8] == PNG
    rows = json.loads((out / "compose.json").read_text())
    assert [r["label"] for r in rows] == ["as trained", "composed (dribble)"]
    assert rows[1]["expert_scale"] == [1.0, 2.0, 0.0, 0.0, 0.0, 0.0]
    assert rows[0]["digest"] != rows[1]["digest"]
    assert (out / "compose.md").read_text().startswith("# Skill composition")


def test_compose_refuses_bad_input_with_the_reason(policy, tmp_path, capsys):
    cases = [
        (["--preset", "moonwalk"], "unknown expert preset 'moonwalk'"),
        (["--expert-scale", "1,2"], "6"),  # one weight per expert
        (["--expert-scale", "1,x,1,1,1,1"], "comma-separated numbers"),
        (["--expert-scale", "0,0,0,0,0,0"], "zero"),
        (["--preset", "default", "--gait", "5"], "--gait 5"),
    ]
    for extra, reason in cases:
        assert main(["compose", str(policy), *extra, "--out", str(tmp_path / "x")]) == 2, extra
        assert reason in capsys.readouterr().err, extra
    assert main(["compose", str(tmp_path / "none.onnx"), "--preset", "default"]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="under 1 s of walking"):
        comp.ComposeScript(duration=4.0)


def test_report_runs_every_analysis_into_one_readme(policy, tmp_path, capsys):
    """``report``: usage, t-SNE, both compositions, and what was not run, in one README."""
    out = tmp_path / "report"
    argv = ["report", str(policy), "--tracks", "plane_q,walk_b", "--time-cap", "3",
            "--jobs", "1", "--compose-duration", "5.5", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    text = (out / "README.md").read_text()
    for piece in ("## Expert usage per task (Fig. 7)", "## t-SNE of the gate outputs (Fig. 8)",
                  "### dribble (presets file)", "### dribble-like (this policy's experts)",
                  "gradient conflict not measured", "adaptation not run"):  # fmt: skip
        assert piece in text, piece
    for png in ("usage/usage.png", "tsne/tsne.png", "compose_own/compose.png"):
        assert (out / png).read_bytes()[:8] == PNG, png
    # the dribble-like scale: two experts of this policy's plane usage, the second doubled
    own = json.loads((out / "compose_own" / "compose.json").read_text())[1]["expert_scale"]
    assert sorted(own) == [0.0, 0.0, 0.0, 0.0, 1.0, 2.0]
    assert main(["report", str(tmp_path / "nope.onnx")]) == 2
