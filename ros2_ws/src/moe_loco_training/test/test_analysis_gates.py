"""moe-loco-analyze usage / tsne: gate weights of a policy file along benchmark trials.

A seeded random CPU-preset export (6 experts), two tracks, one short trial each, in-process."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest

from moe_loco_training.analysis import gate_samples as gs
from moe_loco_training.analysis.cli import main
from moe_loco_training.analysis.expert_usage import expert_usage
from moe_loco_training.analysis.gate_tsne import embed_gates, subsample
from moe_loco_training.benchmark.runner import load_benchmark_config
from moe_loco_training.export import export_policy, random_policy
from moe_loco_training.models import model_config_from_preset

TRACKS = ("plane_q", "walk_b")
CAP = 3.0
ROLLOUT = ["--tracks", ",".join(TRACKS), "--time-cap", str(CAP), "--jobs", "1"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    p = tmp_path_factory.mktemp("gates") / "random.onnx"
    export_policy(random_policy(0, model_config_from_preset("cpu")), p)
    return p


def config():
    base = load_benchmark_config()
    return dataclasses.replace(base, tracks=TRACKS, trials=1, jobs=1, time_cap_s=CAP)


@pytest.fixture(scope="module")
def masked(policy):
    """Expert 2 masked, expert 4 doubled (eq. 5)."""
    return gs.collect_gate_samples(policy, config(), expert_scale=[1, 1, 0, 1, 2, 1])


def test_a_masked_expert_has_usage_zero_and_the_scale_acts_on_the_applied_gate(policy, masked):
    assert masked.tasks == list(TRACKS)
    assert masked.gate.shape == (len(masked), 6)
    assert np.array_equal(masked.expert_scale, [1, 1, 0, 1, 2, 1])
    usage = {u.task: u for u in expert_usage(masked)}
    for u in usage.values():
        assert u.samples > 10
        assert u.mean_gate[2] == 0.0
        assert np.all(np.delete(u.mean_gate, 2) > 0)
    assert usage["plane_q"].bipedal_share == 0.0
    # unscaled, the gate is a softmax: each step's weights sum to 1 (so do the means)
    plain = gs.collect_gate_samples(policy, dataclasses.replace(config(), tracks=("plane_q",)))
    np.testing.assert_allclose(plain.gate.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(plain.gate[:, 2] > 0)


def test_usage_cli_writes_the_bar_chart_csv_and_samples(policy, tmp_path, capsys):
    out = tmp_path / "usage"
    assert main(["usage", str(policy), *ROLLOUT, "--out", str(out)]) == 0
    assert (out / "usage.png").read_bytes()[:8] == PNG
    rows = list(csv.DictReader((out / "usage.csv").open()))
    assert [r["task"] for r in rows] == list(TRACKS)
    for r in rows:
        weights = [float(r[f"expert {i}"]) for i in range(6)]
        assert sum(weights) == pytest.approx(1.0, abs=1e-4)
    samples = gs.GateSamples.load(out / "gate_samples.npz")
    assert sum(int(r["samples"]) for r in rows) == len(samples)
    printed = capsys.readouterr().out
    assert "| plane_q |" in printed and "expert scale [1, 1, 1, 1, 1, 1]" in printed


def test_tsne_gives_one_point_per_sample_and_writes_the_png(masked, tmp_path, capsys):
    rows = np.concatenate([np.flatnonzero(masked.task == t)[:30] for t in TRACKS])
    small = dataclasses.replace(
        masked, gate=masked.gate[rows], task=masked.task[rows], gait=masked.gait[rows]
    )
    e = embed_gates(small, max_points=10_000)
    assert e.xy.shape == (len(small), 2) == (60, 2) and np.all(np.isfinite(e.xy))
    assert list(e.task) == list(small.task) and e.perplexity == pytest.approx(59 / 3)
    few = subsample(masked, 20)
    assert len(few) == 20 and set(masked.task[few]) == set(TRACKS)  # an even share per task
    path = masked.save(tmp_path / "gate_samples.npz")
    out = tmp_path / "tsne"
    assert main(["tsne", str(path), "--max-points", "40", "--out", str(out)]) == 0
    assert (out / "tsne.png").read_bytes()[:8] == PNG
    rows = list(csv.DictReader((out / "tsne.csv").open()))
    assert len(rows) == 40 and {r["gait"] for r in rows} <= {"quadrupedal", "bipedal"}
    assert "t-SNE of 40 gate outputs" in capsys.readouterr().out


def test_bad_policies_tracks_and_scales_are_refused_with_the_reason(policy, tmp_path, capsys):
    text = tmp_path / "policy.onnx"
    text.write_text("not onnx\n")
    assert main(["usage", str(text), *ROLLOUT]) == 2
    assert "not a usable policy file" in capsys.readouterr().err
    assert main(["usage", str(tmp_path / "none.onnx")]) == 2
    assert "none.onnx: no such file" in capsys.readouterr().err
    assert main(["usage", str(policy), "--tracks", "moon"]) == 2
    assert "unknown track 'moon'" in capsys.readouterr().err
    assert main(["usage", str(policy), "--tracks", "mixed"]) == 2
    assert main(["usage", str(policy), "--expert-scale", "1,1"]) == 2
    assert "expert scale refused" in capsys.readouterr().err
    assert main(["usage", str(policy), "--expert-scale", "1,x"]) == 2
    assert main(["usage", str(policy), "--preset", "nosuch"]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert main(["tsne", str(text.with_suffix(".npz"))]) == 2
    assert "not a gate-samples file" in capsys.readouterr().err
