"""``moe-loco-benchmark POLICY``: the paper's simulation benchmark through the deploy code path.

What runs: the policy *file* (ONNX + metadata) in the controller core
(:class:`~moe_loco_controller.core.controller.ControlCore`, exactly what runs on the robot),
driven in lockstep by the simulated Go2 (:class:`~moe_loco_sim.lockstep.LockstepHarness`,
physics at 200 Hz, the robot's wire format between them), on the simulator's tracks: the
5 m x 100 m mixed runway of Table II and the 30 m single-task tracks (``moe_loco_sim.terrain``).

A trial: the robot spawns standing at the track's start (seeded: joint noise, lateral offset,
yaw), the operator asks the core to STAND (its 2 s stand-up) and then to RUN; the trial clock
starts at RUN. The operator model (:class:`HeadingOperator`, a scripted joystick) then sends,
every control step:

- the gait of the track section ``gait_lookahead_m`` ahead of the base (Table II's gait column);
- a forward velocity command (``speed_quadrupedal`` / ``speed_bipedal``), zero for
  ``transition_s`` after each gait change (and after RUN on a bipedal start) so the robot stands
  up or drops down in place;
- vy = 0 and a yaw rate that steers back to the centre line: the desired yaw points at the
  centre line ``heading_lookahead_m`` ahead (``atan2(-y, L)``), ``wz = k (desired - yaw)``
  limited to ``max_yaw_rate``; yaw is that of the gait's forward axis (body x quadrupedal, body
  x minus body z bipedal, as in training), read from the simulator's truth, as a human operator
  sees the robot.

Outcome, checked every control step: success when the base is within 1 m of the target
(``TerrainDescription.reached_target``) before ``time_limit_s`` (400 s); failure when the base
leaves the runway (or falls ``fall_margin_m`` below its lowest surface), when the robot meets
Section III-B's termination (the training environment's own functions on the simulator's
contact sensors), when the controller latches DAMP (its safety supervisor), when it is stuck
(less than ``stuck_progress_m`` forward in ``stuck_window_s``), or at the time limit or cap.
Metrics per track (Table I): success rate; average pass time with ``failure_time_s`` (400 s)
for every failure; average travel distance = forward progress along the track at the end.
Beside them, the velocity tracking error: over the steps where the operator commands a forward
speed (from ``tracking_settle_s`` after each change of the commanded speed on), the mean over
0.5 s windows of |mean v_x - v_cmd|, v_x the base velocity along the gait's heading
[m/s] (a window of about one stride: the figure is the kept speed, not the sway within a step).
Trials run in parallel worker processes, each seeded by ``seed + trial``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import yaml

from moe_loco_controller.core.config import load_config
from moe_loco_controller.core.controller import (
    ControllerConfig,
    Mode,
    OperatorCommand,
    Request,
)
from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_sim.go2_model import Go2Indices, contact_preset
from moe_loco_sim.lockstep import (
    LockstepConfig,
    LockstepHarness,
    LockstepTrace,
    OperatorEvent,
    operator,
)
from moe_loco_sim.scene import Go2Scene, build_scene_spec
from moe_loco_sim.terrain import GAIT_INDEX, TERRAIN_NAMES, TerrainDescription, TrackConfig
from moe_loco_training.env.config import EnvConfigError, TerminationConfig, build_section
from moe_loco_training.env.constants import BIPEDAL
from moe_loco_training.env.terminations import terminated
from moe_loco_training.env.tiles import add_contact_sensors, contact_sensor_addresses
from moe_loco_training.env.vec_env import heading_yaw, wrap_angle

CONFIG_FILE = "benchmark.yaml"
COLUMNS: tuple[tuple[str, str], ...] = (
    ("mixed", "Mix"),
    ("bar_q", "Bar (q)"),
    ("baffle_q", "Baffle (q)"),
    ("stair_q", "Stair (q)"),
    ("pit_q", "Pit (q)"),
    ("slope_q", "Slope (q)"),
    ("walk_b", "Walk (b)"),
    ("slope_b", "Slope (b)"),
    ("stair_b", "Stair (b)"),
)
"""Table I's columns: the track behind each."""
EXTRA_COLUMNS: tuple[tuple[str, str], ...] = (("plane_q", "Walk (q)"),)
"""Tracks outside Table I, printed after its columns when benchmarked: the 30 m quadrupedal
plane track (the first policy's bar: quadrupedal plane walking at 0.5 m/s)."""
_Job = TypeVar("_Job")
_Out = TypeVar("_Out")
OUTCOMES = ("success", "off_runway", "terminated", "damp", "stuck", "time_limit", "time_cap")


@dataclass(frozen=True)
class OperatorConfig:
    """The scripted joystick (see the module docstring)."""

    stand_request_s: float = 0.1
    run_request_s: float = 2.3
    speed_quadrupedal: float = 0.5
    speed_bipedal: float = 0.3
    gait_lookahead_m: float = 0.5
    transition_s: float = 2.0
    heading_gain: float = 1.0
    heading_lookahead_m: float = 2.0
    max_yaw_rate: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.stand_request_s < self.run_request_s:
            raise ValueError("need 0 <= stand_request_s < run_request_s")
        if not (self.heading_lookahead_m > 0 and self.max_yaw_rate >= 0):
            raise ValueError("heading_lookahead_m must be > 0 and max_yaw_rate >= 0")


@dataclass(frozen=True)
class BenchmarkConfig:
    """``config/benchmark.yaml``."""

    tracks: tuple[str, ...] = tuple(t for t, _ in COLUMNS)
    trials: int = 10
    seed: int = 0
    jobs: int = 0
    contact: str = "cheap"
    time_limit_s: float = 400.0
    failure_time_s: float = 400.0
    time_cap_s: float = 400.0
    joint_noise: float = 0.02
    spawn_y_noise: float = 0.3
    spawn_yaw_noise: float = 0.1
    stuck_window_s: float = 30.0
    stuck_progress_m: float = 0.5
    fall_margin_m: float = 0.3
    tracking_settle_s: float = 1.0
    operator: OperatorConfig = field(default_factory=OperatorConfig)

    def __post_init__(self) -> None:
        unknown = [t for t in self.tracks if t not in TERRAIN_NAMES or t == "plane"]
        if unknown:
            raise ValueError(f"tracks: unknown track {unknown[0]!r} (known: {TERRAIN_NAMES[1:]})")
        if self.trials < 1 or self.jobs < 0:
            raise ValueError("trials must be >= 1 and jobs >= 0")
        if not self.time_cap_s > 0:
            raise ValueError("time_cap_s must be > 0")
        if self.contact not in ("cheap", "menagerie"):
            raise ValueError("contact must be cheap or menagerie")


def default_config_path() -> Path:
    here = Path(__file__).resolve().parents[2] / "config" / CONFIG_FILE
    if here.is_file():
        return here
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("moe_loco_training")) / "config" / CONFIG_FILE


def load_benchmark_config(path: str | os.PathLike[str] | None = None) -> BenchmarkConfig:
    """Load and validate a benchmark YAML (the packaged one when None)."""
    p = Path(path) if path is not None else default_config_path()
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise EnvConfigError(f"cannot read {p}: {e.strerror}") from None
    return build_section(BenchmarkConfig, data)


# ----------------------------------------------------------------------------- the operator
class HeadingOperator:
    """Gait per section, forward speed, heading hold toward the centre line."""

    def __init__(self, config: OperatorConfig, description: TerrainDescription) -> None:
        self.config = config
        self.description = description
        self.gait = GAIT_INDEX[description.gait_at(description.spawn[0])]
        self.changed_at = config.run_request_s if self.gait == BIPEDAL else -math.inf
        self.switched_in = False

    def gait_time(self, now: float) -> float:
        """Time since the current gait command began [s] (since RUN at the start)."""
        return now - max(self.changed_at, self.config.run_request_s)

    def command(
        self, now: float, pos: np.ndarray, rot: np.ndarray
    ) -> tuple[float, float, float, int]:
        """(vx, vy, wz, gait) at sim time ``now`` for the base at ``pos`` with rotation ``rot``."""
        c = self.config
        x, y = float(pos[0]), float(pos[1])
        gait = GAIT_INDEX[self.description.gait_at(x + c.gait_lookahead_m)]
        if gait != self.gait:
            self.gait, self.changed_at, self.switched_in = gait, now, True
        settling = now - self.changed_at < c.transition_s
        speed = c.speed_bipedal if gait == BIPEDAL else c.speed_quadrupedal
        yaw = float(heading_yaw(rot[None], np.array([gait]))[0])
        desired = math.atan2(-y, c.heading_lookahead_m)
        err = float(wrap_angle(np.array(desired - yaw)))
        wz = max(-c.max_yaw_rate, min(c.max_yaw_rate, c.heading_gain * err))
        return (0.0 if settling else speed), 0.0, wz, gait


class BenchmarkHarness(LockstepHarness):
    """The lockstep harness with a closed-loop operator: after the scripted STAND and RUN
    requests, every control step's command comes from :class:`HeadingOperator` on the robot's
    current state (the harness's ``operator_command`` hook, extended)."""

    def __init__(
        self,
        policy: str | os.PathLike[str] | PolicyRuntime,
        controller: ControllerConfig,
        config: LockstepConfig,
        scene: Go2Scene,
        op: HeadingOperator,
    ) -> None:
        c = op.config
        g = op.gait
        script: list[OperatorEvent] = [
            operator(0.0, gait=g),
            operator(c.stand_request_s, request=Request.STAND, gait=g),
            operator(c.run_request_s, request=Request.RUN, gait=g),
        ]
        super().__init__(policy, controller, config, script=script, scene=scene)
        self.op = op
        self.last_vx_cmd = 0.0
        """The forward speed the operator commanded at the last control step [m/s]."""

    def operator_command(self, now: float) -> OperatorCommand | None:
        cmd = super().operator_command(now)
        if cmd is None or now < self.op.config.run_request_s - 1e-9:
            return cmd
        vx, vy, wz, gait = self.op.command(now, self.robot.base_pos(), self.robot.base_rotation())
        self.last_vx_cmd = vx
        return dataclasses.replace(cmd, vx=vx, vy=vy, wz=wz, gait=gait)


# ----------------------------------------------------------------------------- one trial
@dataclass(frozen=True)
class TrialResult:
    """One trial's outcome (times in seconds since the RUN request)."""

    track: str
    trial: int
    seed: int
    success: bool
    outcome: str
    pass_time_s: float
    """Time to the target, or ``failure_time_s`` for a failure."""
    travel_m: float
    """Forward progress along the track at the end [m] (>= 0)."""
    end_time_s: float
    """When the trial ended (success, failure or cap)."""
    wall_s: float
    vx_error: float | None = None
    """Velocity tracking error [m/s] (see the module docstring); None: no scored step."""


TRACKING_WINDOW_STEPS = 25
"""0.5 s of control steps at 50 Hz."""


def tracking_error(v: Sequence[float], cmd: Sequence[float], window: int) -> float | None:
    """Mean over consecutive ``window``-step windows of |mean v - mean cmd| (None: no window)."""
    n = (len(v) // window) * window
    if n == 0:
        return None
    vw = np.asarray(v[:n]).reshape(-1, window).mean(axis=1)
    cw = np.asarray(cmd[:n]).reshape(-1, window).mean(axis=1)
    return float(np.abs(vw - cw).mean())


def benchmark_scene(track: str | TrackConfig, contact: str) -> Go2Scene:
    """The track with one motor-actuated Go2 and the environment's contact sensors."""
    spec, terrain = build_scene_spec(track, contact)
    add_contact_sensors(spec)
    model = spec.compile()
    return Go2Scene(spec, model, Go2Indices.from_model(model), terrain, contact_preset(contact))


def run_trial(
    policy: str | os.PathLike[str],
    track: str | TrackConfig,
    trial: int,
    config: BenchmarkConfig,
    controller: ControllerConfig | None = None,
) -> TrialResult:
    """Run one seeded trial of ``policy`` on ``track``; see the module docstring."""
    return run_trial_traced(policy, track, trial, config, controller)[0]


def run_trial_traced(
    policy: str | os.PathLike[str],
    track: str | TrackConfig,
    trial: int,
    config: BenchmarkConfig,
    controller: ControllerConfig | None = None,
    expert_scale: Sequence[float] | None = None,
) -> tuple[TrialResult, LockstepTrace]:
    """:func:`run_trial`, also returning the harness's trace of every control step (gate
    weights, gait, mode, ...); ``expert_scale``: the policy's w of eq. (5) (None: ones)."""
    wall = time.perf_counter()
    seed = config.seed + trial
    scene = benchmark_scene(track, config.contact)
    desc = scene.terrain.description
    op = HeadingOperator(config.operator, desc)
    controller = controller or load_config().control
    lock = LockstepConfig(
        terrain=desc.name, contact=config.contact, spawn="stand",
        joint_noise=config.joint_noise, seed=seed,
    )  # fmt: skip
    runtime = PolicyRuntime(policy)
    if expert_scale is not None:
        runtime.set_expert_scale(expert_scale)
    h = BenchmarkHarness(runtime, controller, lock, scene, op)
    rng = np.random.default_rng(seed)
    pos = scene.spawn_base_pos()
    pos[1] += rng.uniform(-config.spawn_y_noise, config.spawn_y_noise)
    yaw = rng.uniform(-config.spawn_yaw_noise, config.spawn_yaw_noise)
    h.robot.reset(
        "stand", config.joint_noise, rng, base_pos=pos,
        base_quat=(math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)),
    )  # fmt: skip
    links, _ = contact_sensor_addresses(scene.model)
    lowest = min(min(z0, z1) for _, _, z0, z1 in desc.profile)
    term_cfg = TerminationConfig()
    run_at = config.operator.run_request_s
    limit = min(config.time_limit_s, config.time_cap_s)
    spawn_x = float(pos[0])
    best_x, best_at = spawn_x, run_at
    outcome = "time_cap" if config.time_cap_s < config.time_limit_s else "time_limit"
    success = False
    end = limit
    v_log: list[float] = []
    cmd_log: list[float] = []
    last_cmd, cmd_since = 0.0, 0.0
    while True:
        h.advance(h.core.control_dt)
        now = h.time
        vx_cmd = h.last_vx_cmd
        if vx_cmd != last_cmd:
            last_cmd, cmd_since = vx_cmd, now
        if now >= run_at and vx_cmd > 0.0 and now - cmd_since >= config.tracking_settle_s:
            rot_now = h.robot.base_rotation()
            yaw = float(heading_yaw(rot_now[None], np.array([h.op.gait]))[0])
            vw = h.robot.base_lin_vel_world()
            v_log.append(math.cos(yaw) * float(vw[0]) + math.sin(yaw) * float(vw[1]))
            cmd_log.append(vx_cmd)
        t = now - run_at
        p = h.robot.base_pos()
        x, y = float(p[0]), float(p[1])
        if h.core.mode == Mode.DAMP:
            outcome, end = "damp", t
            break
        if now < run_at:
            continue
        if desc.reached_target(x, y):
            if t <= config.time_limit_s:
                success, outcome, end = True, "success", t
            break
        if desc.is_off_runway(x, y) or p[2] < lowest - config.fall_margin_m:
            outcome, end = "off_runway", t
            break
        rot = h.robot.base_rotation()
        force = -h.robot.data.sensordata[links][None]
        done = terminated(
            np.array([h.core.gait]), -rot[2][None], force,
            np.array([op.gait_time(now)]), np.array([op.switched_in]),
            np.array([bool(np.isfinite(p).all())]), term_cfg,
        )[0]  # fmt: skip
        if done:
            outcome, end = "terminated", t
            break
        if x > best_x + config.stuck_progress_m:
            best_x, best_at = x, now
        if now - best_at > config.stuck_window_s:
            outcome, end = "stuck", t
            break
        if t >= limit - 1e-9:
            break
    travel = max(0.0, float(h.robot.base_pos()[0]) - spawn_x)
    result = TrialResult(
        track=desc.name,
        trial=trial,
        seed=seed,
        success=success,
        outcome=outcome,
        pass_time_s=end if success else config.failure_time_s,
        travel_m=travel,
        end_time_s=end,
        wall_s=time.perf_counter() - wall,
        vx_error=tracking_error(v_log, cmd_log, TRACKING_WINDOW_STEPS),
    )
    return result, h.trace


def _trial_job(args: tuple[str, str, int, BenchmarkConfig]) -> TrialResult:
    policy, track, trial, config = args
    return run_trial(policy, track, trial, config)


def run_benchmark(policy: str | os.PathLike[str], config: BenchmarkConfig) -> list[TrialResult]:
    """Every track's trials, in parallel worker processes (``config.jobs``; 1: in-process)."""
    jobs = [
        (str(policy), track, k, config) for track in config.tracks for k in range(config.trials)
    ]
    return map_trials(_trial_job, jobs, config.jobs)


def map_trials(fn: Callable[[_Job], _Out], jobs: Sequence[_Job], workers: int) -> list[_Out]:
    """``[fn(j) for j in jobs]`` in ``workers`` spawned processes (0: one per core; 1: here).
    ``fn`` must be a module-level function (it is pickled by name)."""
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    if workers <= 1:
        return [fn(j) for j in jobs]
    ctx = multiprocessing.get_context("spawn")  # no inherited threads (torch, onnxruntime)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return list(pool.map(fn, jobs))


# ----------------------------------------------------------------------------- the table
def summarise(results: Sequence[TrialResult]) -> dict[str, dict[str, Any]]:
    """Per track: success rate, average pass time, average travel distance, outcome counts."""
    out: dict[str, dict[str, Any]] = {}
    for track in dict.fromkeys(r.track for r in results):
        rs = [r for r in results if r.track == track]
        errs = [r.vx_error for r in rs if r.vx_error is not None]
        out[track] = {
            "trials": len(rs),
            "vx_error_mps": float(np.mean(errs)) if errs else None,
            "success_rate": float(np.mean([r.success for r in rs])),
            "pass_time_s": float(np.mean([r.pass_time_s for r in rs])),
            "travel_m": float(np.mean([r.travel_m for r in rs])),
            "outcomes": {
                o: sum(r.outcome == o for r in rs)
                for o in OUTCOMES
                if any(r.outcome == o for r in rs)
            },
        }
    return out


def format_table(summary: dict[str, dict[str, Any]], title: str) -> str:
    """Table I's layout: columns Mix .. Stair (b), rows success rate, pass time, travel."""
    label_w = 30
    col_w = 11
    columns = [*COLUMNS, *((t, n) for t, n in EXTRA_COLUMNS if t in summary)]
    head = "Metric".ljust(label_w) + "".join(name.rjust(col_w) for _, name in columns)
    rows = [title, head, "-" * len(head)]
    for key, label, fmt in (
        ("success_rate", "Success Rate ↑", "{:.3f}"),
        ("pass_time_s", "Average Pass Time (s) ↓", "{:.2f}"),
        ("travel_m", "Average Travel Distance (m) ↑", "{:.2f}"),
    ):
        cells = [fmt.format(summary[t][key]) if t in summary else "-" for t, _ in columns]
        rows.append(label.ljust(label_w) + "".join(c.rjust(col_w) for c in cells))
    cells = [
        "-" if t not in summary or summary[t].get("vx_error_mps") is None
        else f"{summary[t]['vx_error_mps']:.3f}"
        for t, _ in columns
    ]  # fmt: skip
    rows.append("vx Tracking Error (m/s) ↓".ljust(label_w) + "".join(c.rjust(col_w) for c in cells))
    outcomes = "; ".join(
        f"{t}: " + ", ".join(f"{o} {n}" for o, n in s["outcomes"].items())
        for t, s in summary.items()
    )
    rows.append(f"outcomes: {outcomes}")
    return "\n".join(rows)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="moe-loco-benchmark",
        description="The MoE-Loco simulation benchmark (paper Table I) of one policy file, run "
        "through the controller core. POLICY: an .onnx policy file, or baseline:stand / "
        "baseline:trot for a scripted yardstick.",
    )
    p.add_argument("policy", help="policy .onnx, or baseline:stand | baseline:trot")
    p.add_argument("--config", type=Path, help="benchmark YAML (default: config/benchmark.yaml)")
    p.add_argument(
        "--tracks",
        help="comma-separated tracks (default: Table I's "
        f"{','.join(t for t, _ in COLUMNS)}; also {','.join(t for t, _ in EXTRA_COLUMNS)})",
    )
    p.add_argument("--trials", type=int, help="trials per track")
    p.add_argument("--time-cap", type=float, help="stop each trial after this many seconds")
    p.add_argument("--jobs", type=int, help="worker processes (0: one per core)")
    p.add_argument("--seed", type=int)
    p.add_argument("--contact", choices=("cheap", "menagerie"))
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``moe-loco-benchmark``: see ``--help``. The table, then one line of JSON."""
    args = _parser().parse_args(argv)
    try:
        cfg = load_benchmark_config(args.config)
        changes: dict[str, Any] = {}
        if args.tracks:
            changes["tracks"] = tuple(t.strip() for t in args.tracks.split(",") if t.strip())
        for name, key in (
            ("trials", "trials"),
            ("time_cap", "time_cap_s"),
            ("jobs", "jobs"),
            ("seed", "seed"),
            ("contact", "contact"),
        ):
            if getattr(args, name) is not None:
                changes[key] = getattr(args, name)
        cfg = dataclasses.replace(cfg, **changes)
    except (EnvConfigError, ValueError) as e:
        print(f"moe-loco-benchmark: {e}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        policy = args.policy
        if policy.startswith("baseline:"):
            from moe_loco_training.benchmark.baselines import write_baseline

            try:
                policy = str(write_baseline(policy.split(":", 1)[1], Path(tmp) / "baseline.onnx"))
            except ValueError as e:
                print(f"moe-loco-benchmark: {e}", file=sys.stderr)
                return 2
        elif not Path(policy).is_file():
            print(f"moe-loco-benchmark: no policy file {policy}", file=sys.stderr)
            return 2
        t0 = time.perf_counter()
        try:
            results = run_benchmark(policy, cfg)
        except Exception as e:  # a policy the runtime refuses, typically
            print(f"moe-loco-benchmark: {e}", file=sys.stderr)
            return 1
        wall = time.perf_counter() - t0
    summary = summarise(results)
    capped = cfg.time_cap_s < cfg.time_limit_s
    title = (
        f"MoE-Loco benchmark: {args.policy} | {cfg.trials} trial(s) per track, seed {cfg.seed}, "
        f"contact {cfg.contact}, {wall:.1f} s wall"
        + (f" | CAPPED at {cfg.time_cap_s:g} s: not the paper's 400 s protocol" if capped else "")
    )
    print(format_table(summary, title))
    doc = {
        "policy": args.policy,
        "config": asdict(cfg),
        "tracks": summary,
        "trials": [asdict(r) for r in results],
        "wall_s": wall,
    }
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
