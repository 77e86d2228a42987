"""moe-loco-benchmark: policy files through the controller core on the paper's tracks.

Tiny runs (short time cap, one trial per track): a policy that stands still scores 0 and goes
nowhere, a track whose target is within reach scores 1 (so success is detectable at all), a
random MoE-Loco export and the scripted trot produce Table I, the CLI prints it plus JSON, and
trials are seeded (same seed, same result) and run in worker processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from moe_loco_sim.terrain import SectionSpec, TrackConfig, build_terrain
from moe_loco_training.benchmark import runner
from moe_loco_training.benchmark.baselines import write_baseline
from moe_loco_training.export import export_policy, random_policy

CAP = 8.0


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    random = d / "random.onnx"
    export_policy(random_policy(0), random)
    return {
        "stand": write_baseline("stand", d / "stand.onnx"),
        "trot": write_baseline("trot", d / "trot.onnx"),
        "random": random,
    }


def config(**kw):
    base = runner.load_benchmark_config()
    return runner.dataclasses.replace(base, trials=1, jobs=1, time_cap_s=CAP, **kw)


def test_config_file_equals_defaults_and_is_strict(tmp_path):
    assert runner.load_benchmark_config() == runner.BenchmarkConfig()
    assert [t for t, _ in runner.COLUMNS] == list(runner.BenchmarkConfig().tracks)
    assert [n for _, n in runner.COLUMNS] == [
        "Mix",
        "Bar (q)",
        "Baffle (q)",
        "Stair (q)",
        "Pit (q)",
        "Slope (q)",
        "Walk (b)",
        "Slope (b)",
        "Stair (b)",
    ]
    mixed = build_terrain("mixed").description
    assert (mixed.length, mixed.width) == (100.0, 5.0)  # Table II's runway
    assert all(build_terrain(t).description.length == 30.0 for t, _ in runner.COLUMNS[1:])
    p = tmp_path / "b.yaml"
    p.write_text("trials: 2\noperator: {speed_quadrupedal: 0.4, sped: 1}\n")
    with pytest.raises(runner.EnvConfigError, match=r"operator\.sped: unknown key"):
        runner.load_benchmark_config(p)
    p.write_text("tracks: [mixed, moon]\n")
    with pytest.raises(runner.EnvConfigError, match="unknown track 'moon'"):
        runner.load_benchmark_config(p)


def test_standing_still_scores_zero_everywhere(policies):
    results = runner.run_benchmark(policies["stand"], config())
    assert len(results) == 9
    for r in results:
        assert not r.success, r
        assert r.pass_time_s == 400.0
        assert r.travel_m < 0.3, r
    summary = runner.summarise(results)
    assert all(s["success_rate"] == 0.0 for s in summary.values())
    # it was commanded 0.5 m/s and stood: the tracking error is the whole command
    errs = [r.vx_error for r in results if r.vx_error is not None]
    assert errs and all(e == pytest.approx(0.5, abs=0.05) for e in errs)
    # quadrupedal tracks: it just stands (time cap); bipedal: it never stands up and the
    # Section III-B rule ends the trial once the 1 s grace is over
    for r in results:
        expected = "terminated" if r.track in ("walk_b", "slope_b", "stair_b") else "time_cap"
        assert r.outcome == expected, r
        if expected == "terminated":
            assert 1.0 < r.end_time_s < 1.1


def test_a_target_within_reach_is_a_success(policies):
    """The positive control: on a track whose target lies 0.7 m from the spawn point, the same
    standing policy succeeds at once (pass time 0, not 400)."""
    near = TrackConfig(
        name="near",
        length=2.1,
        lead_in=1.0,
        finish=1.0,
        target_margin=0.95,
        min_gap=0.0,
        sections=(SectionSpec("plane", "quadrupedal", (0.1,)),),
    )
    r = runner.run_trial(policies["stand"], near, 0, config())
    assert r.success and r.outcome == "success" and r.pass_time_s == pytest.approx(0.0)


def test_random_and_scripted_policies_produce_the_table(policies, capsys):
    tables = {}
    for name in ("random", "trot"):
        results = runner.run_benchmark(policies[name], config())
        summary = runner.summarise(results)
        table = runner.format_table(summary, f"{name} (cap {CAP} s)")
        print(table)
        tables[name] = summary
        lines = table.splitlines()
        assert lines[1].split()[1:] == [
            "Mix",
            "Bar",
            "(q)",
            "Baffle",
            "(q)",
            "Stair",
            "(q)",
            "Pit",
            "(q)",
            "Slope",
            "(q)",
            "Walk",
            "(b)",
            "Slope",
            "(b)",
            "Stair",
            "(b)",
        ]
        assert lines[3].startswith("Success Rate") and lines[4].startswith("Average Pass")
        assert lines[5].startswith("Average Travel")
        assert len(lines[3].split()) == 3 + 9
    stand_travel = 0.3  # bound from the standing test
    trot = tables["trot"]
    quad = ("bar_q", "baffle_q", "pit_q", "slope_q")
    # blind rhythm moves the robot forward on flat-ish quadrupedal tracks; standing does not
    assert max(trot[t]["travel_m"] for t in quad) > stand_travel + 0.5, trot
    # the random MoE export is not a walker: it falls, stalls or is damped, never succeeds
    assert all(s["success_rate"] == 0.0 for s in tables["random"].values())


def test_seeded_trials_repeat_and_differ_by_seed(policies):
    cfg = config(tracks=("bar_q",))
    a = runner.run_trial(policies["trot"], "bar_q", 0, cfg)
    b = runner.run_trial(policies["trot"], "bar_q", 0, cfg)
    c = runner.run_trial(policies["trot"], "bar_q", 1, cfg)
    assert (a.travel_m, a.outcome, a.end_time_s) == (b.travel_m, b.outcome, b.end_time_s)
    assert a.travel_m != c.travel_m


def test_cli_runs_trials_in_worker_processes(policies, tmp_path):
    exe = Path(sys.executable).with_name("moe-loco-benchmark")
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [
            str(exe),
            str(policies["trot"]),
            "--tracks",
            "bar_q,walk_b",
            "--trials",
            "2",
            "--jobs",
            "2",
            "--time-cap",
            "3",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "CAPPED at 3 s" in lines[0] and lines[1].startswith("Metric")
    doc = json.loads(lines[-1])
    assert doc == json.loads(out.read_text())
    assert set(doc["tracks"]) == {"bar_q", "walk_b"}
    assert [(t["track"], t["trial"]) for t in doc["trials"]] == [
        ("bar_q", 0),
        ("bar_q", 1),
        ("walk_b", 0),
        ("walk_b", 1),
    ]
    bad = subprocess.run(
        [str(exe), str(tmp_path / "missing.onnx")], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "no policy file" in bad.stderr
    bad = subprocess.run(
        [str(exe), "baseline:moonwalk"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "unknown baseline" in bad.stderr


def test_operator_gait_per_section_transition_hold_and_heading():
    import math

    import numpy as np

    desc = build_terrain("mixed").description
    c = runner.OperatorConfig()
    op = runner.HeadingOperator(c, desc)
    level = np.eye(3)
    vx, vy, wz, gait = op.command(3.0, np.array([1.0, 0.0, 0.3]), level)
    assert (vx, vy, wz, gait) == (c.speed_quadrupedal, 0.0, 0.0, 0)
    # left of the centre line: steer right, toward a point 2 m ahead on the line
    _, _, wz, _ = op.command(3.0, np.array([1.0, 1.0, 0.3]), level)
    assert wz == pytest.approx(math.atan2(-1.0, c.heading_lookahead_m))
    _, _, wz, _ = op.command(3.0, np.array([1.0, 5.0, 0.3]), level)
    assert wz == -c.max_yaw_rate
    # half a metre before the bipedal plane: bipedal, standing still for transition_s
    plane = next(s for s in desc.segments if s.kind == "plane")
    at = np.array([plane.x_start - 0.4, 0.0, 0.3])
    vx, _, _, gait = op.command(50.0, at, level)
    assert gait == 1 and vx == 0.0 and op.switched_in
    vx, _, _, gait = op.command(50.0 + c.transition_s - 0.02, at, level)
    assert vx == 0.0
    # standing on its rear legs facing +x (nose up, belly forward): heading 0, full speed
    rear_up = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # body x -> up
    vx, _, wz, gait = op.command(50.0 + c.transition_s + 0.02, at, rear_up)
    assert (vx, gait) == (c.speed_bipedal, 1) and wz == pytest.approx(0.0, abs=1e-12)
    assert op.gait_time(50.0 + c.transition_s) == pytest.approx(c.transition_s)


def test_the_quadrupedal_plane_track_is_an_extra_column(policies):
    """plane_q (the first policy's bar) is benchmarked on request and printed after Table I."""
    results = runner.run_benchmark(policies["trot"], config(tracks=("plane_q",)))
    assert [r.track for r in results] == ["plane_q"]
    assert results[0].travel_m > 0.5  # the open-loop trot makes way on the plane
    table = runner.format_table(runner.summarise(results), "trot on plane_q").splitlines()
    assert table[1].split()[-2:] == ["Walk", "(q)"]
    travel = table[5].split()
    assert travel[-1] == f"{results[0].travel_m:.2f}" and travel[-2] == "-"
    # the tracking error row: the trot's speed against the operator's 0.5 m/s
    err = results[0].vx_error
    assert err is not None and 0.0 < err < 0.5
    assert table[6].startswith("vx Tracking Error") and table[6].split()[-1] == f"{err:.3f}"


def test_tracking_error_is_the_mean_windowed_speed_error():
    cmd = [0.5] * 50
    assert runner.tracking_error([0.5] * 50, cmd, 25) == 0.0
    # a sway within each window costs nothing; a slow window costs its deficit
    sway = [0.3, 0.7] * 12 + [0.5] + [0.4] * 25
    assert runner.tracking_error(sway, cmd, 25) == pytest.approx((0.0 + 0.1) / 2)
    assert runner.tracking_error([0.5] * 10, [0.5] * 10, 25) is None  # no whole window
