"""Skill composition (paper Section IV-F, Fig. 9, eq. 5): the gait a rescaled gate gives.

The policy runs in the lockstep sim (:mod:`moe_loco_sim.lockstep`, the controller core on the
simulated Go2, deterministic) twice from the same start: as trained (w = 1) and with the composed
expert scale w, under one operator script (stand up, hand over, walk at a constant command). Each
run records per control step the foot clearance of each leg (foot sphere centre height above the
ground minus its radius, on the plane), foot contact (the touch sensors), the body velocity and
the gate. :func:`gait_metrics` reduces the walking window to numbers: per leg the duty factor,
the touchdown rate (its stride frequency), mean and peak clearance; the diagonal and lateral pair
synchrony of contact (a trot has diagonal pairs in phase, +1, and lateral pairs out of phase, -1);
the body velocity, height and whether the robot fell.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moe_loco_controller.core.controller import Request
from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_sim.lockstep import LockstepConfig, LockstepHarness, LockstepTrace, operator

LEGS = ("FR", "FL", "RR", "RL")
"""SDK leg order (the sim's foot geoms and touch sensors)."""
CONTACT_N = 1.0
"""A foot with a touch-sensor normal force above this [N] is in contact."""
FALLEN_HEIGHT = 0.15
"""A base below this height [m] (or a safety fault) counts as a fall."""


@dataclass(frozen=True)
class ComposeScript:
    """The operator script both runs follow."""

    stand_at: float = 0.5
    run_at: float = 3.0
    walk_at: float = 3.5
    duration: float = 10.0
    """Sim seconds of the whole run."""
    vx: float = 0.5
    vy: float = 0.0
    wz: float = 0.0
    gait: int = 0
    settle_s: float = 1.0
    """The metrics start this long after the walk command."""

    def events(self) -> list:
        return [
            operator(0.0, gait=self.gait),
            operator(self.stand_at, request=Request.STAND, gait=self.gait),
            operator(self.run_at, request=Request.RUN, gait=self.gait),
            operator(self.walk_at, vx=self.vx, vy=self.vy, wz=self.wz, gait=self.gait),
        ]

    def __post_init__(self) -> None:
        if not self.walk_at + self.settle_s + 1.0 <= self.duration:
            raise ValueError(
                f"duration {self.duration} s leaves under 1 s of walking after the settle time"
            )


class FootHarness(LockstepHarness):
    """The lockstep harness, also recording foot clearance and contact at each control step."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        idx = self.robot.idx
        self.foot_geoms = np.asarray(idx.foot_geoms)
        self.foot_radius = np.asarray(self.robot.model.geom_size[self.foot_geoms, 0])
        self.foot_touch = np.asarray(idx.foot_touch)
        self.clearance: list[np.ndarray] = []
        self.contact: list[np.ndarray] = []

    def _record(self, now: float, result: Any) -> None:
        super()._record(now, result)
        d = self.robot.data
        self.clearance.append(d.geom_xpos[self.foot_geoms, 2] - self.foot_radius)
        self.contact.append(d.sensordata[self.foot_touch] > CONTACT_N)


@dataclass
class ComposedRun:
    """One lockstep run: its trace plus the feet."""

    label: str
    expert_scale: list[float]
    trace: LockstepTrace
    clearance: np.ndarray
    """(steps, 4) foot clearance [m], SDK leg order."""
    contact: np.ndarray
    """(steps, 4) bool."""

    @property
    def t(self) -> np.ndarray:
        return self.trace.arrays()["t"]


@dataclass
class GaitMetrics:
    label: str
    expert_scale: list[float]
    window_s: tuple[float, float]
    fell: bool
    faults: list[str]
    mean_vx: float
    mean_vy: float
    mean_wz: float
    command: list[float]
    mean_height: float
    stride_hz: dict[str, float]
    """Touchdowns per second, per leg: (n - 1) over the first-to-last touchdown span."""
    duty_factor: dict[str, float]
    mean_clearance: dict[str, float]
    peak_clearance: dict[str, float]
    diagonal_sync: float
    """Mean correlation of contact of FR-RL and FL-RR (+1: in phase, a trot)."""
    lateral_sync: float
    """Mean correlation of contact of FR-FL and RR-RL (-1: out of phase)."""
    mean_gate: list[float] = field(default_factory=list)
    digest: str = ""
    """The trace's hash: equal runs give equal digests."""

    @property
    def mean_stride_hz(self) -> float:
        v = [x for x in self.stride_hz.values() if math.isfinite(x)]
        return float(np.mean(v)) if v else float("nan")


def run_composed(
    policy: str | Path | PolicyRuntime,
    expert_scale: np.ndarray | None,
    script: ComposeScript | None = None,
    config: LockstepConfig | None = None,
    label: str = "",
) -> ComposedRun:
    """One lockstep run of ``policy`` with ``expert_scale`` (None: the runtime's own scale, e.g.
    one set through the controller's service)."""
    script = script or ComposeScript()
    runtime = policy if isinstance(policy, PolicyRuntime) else PolicyRuntime(policy, device="cpu")
    if expert_scale is not None:
        runtime.set_expert_scale(expert_scale)
    h = FootHarness(runtime, _controller_config(), config, script=script.events())
    trace = h.run(script.duration)
    return ComposedRun(
        label=label,
        expert_scale=[float(w) for w in runtime.expert_scale],
        trace=trace,
        clearance=np.array(h.clearance),
        contact=np.array(h.contact),
    )


def _controller_config() -> Any:
    from moe_loco_controller.core.config import load_config

    return load_config().control


def _sync(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(float), b.astype(float)
    if a.std() < 1e-9 or b.std() < 1e-9:
        return float("nan")  # a leg that never changes contact has no phase
    return float(np.corrcoef(a, b)[0, 1])


def _rate(times: np.ndarray) -> float:
    """Events per second from their times: (n - 1) over the first-to-last span (0 below two)."""
    if len(times) < 2:
        return 0.0
    return float((len(times) - 1) / (times[-1] - times[0]))


def _mean_sync(contact: np.ndarray, *pairs: tuple[int, int]) -> float:
    """Mean contact correlation over leg pairs (NaN if no pair ever changes contact)."""
    v = [_sync(contact[:, i], contact[:, j]) for i, j in pairs]
    v = [x for x in v if math.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def gait_metrics(run: ComposedRun, script: ComposeScript | None = None) -> GaitMetrics:
    """The walking window's numbers (see the module docstring)."""
    script = script or ComposeScript()
    a = run.trace.arrays()
    t = a["t"]
    t0, t1 = script.walk_at + script.settle_s, float(t[-1])
    w = (t >= t0) & (t <= t1)
    faults = sorted({f for step in run.trace.faults for f in step})
    height = a["base_height"]
    fell = bool(np.any(height[t >= script.run_at] < FALLEN_HEIGHT) or faults)
    contact, clear = run.contact[w], run.clearance[w]
    tw = t[w]
    down = contact[1:] & ~contact[:-1]  # touchdowns, at tw[1:]
    legs = dict(enumerate(LEGS))
    return GaitMetrics(
        label=run.label,
        expert_scale=run.expert_scale,
        window_s=(float(t0), t1),
        fell=fell,
        faults=faults,
        mean_vx=float(a["base_lin_vel"][w, 0].mean()),
        mean_vy=float(a["base_lin_vel"][w, 1].mean()),
        mean_wz=float(a["base_ang_vel"][w, 2].mean()),
        command=[script.vx, script.vy, script.wz],
        mean_height=float(height[w].mean()),
        stride_hz={legs[i]: _rate(tw[1:][down[:, i]]) for i in range(4)},
        duty_factor={legs[i]: float(contact[:, i].mean()) for i in range(4)},
        mean_clearance={legs[i]: float(clear[:, i].mean()) for i in range(4)},
        peak_clearance={legs[i]: float(clear[:, i].max()) for i in range(4)},
        diagonal_sync=_mean_sync(contact, (0, 3), (1, 2)),
        lateral_sync=_mean_sync(contact, (0, 1), (2, 3)),
        mean_gate=[float(g) for g in a["gate"][w].mean(axis=0)] if a["gate"].size else [],
        digest=run.trace.digest(),
    )


def metrics_table(metrics: list[GaitMetrics]) -> str:
    """A Markdown table: one column per run."""
    heads = [m.label for m in metrics]

    def row(name: str, fmt: Any) -> str:
        return f"| {name} | " + " | ".join(fmt(m) for m in metrics) + " |"

    def legs(d: dict[str, float], f: str) -> str:
        return " / ".join(format(d[k], f) for k in LEGS)

    lines = [
        "| | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(heads),
        row("expert scale w", lambda m: "[" + ", ".join(f"{x:g}" for x in m.expert_scale) + "]"),
        row("fell / faults", lambda m: f"{'yes' if m.fell else 'no'} {', '.join(m.faults)}"),
        row(
            "body vx, vy [m/s] (command)",
            lambda m: (
                f"{m.mean_vx:+.3f}, {m.mean_vy:+.3f} ({m.command[0]:+.2f}, {m.command[1]:+.2f})"
            ),
        ),
        row("yaw rate [rad/s]", lambda m: f"{m.mean_wz:+.3f}"),
        row("base height [m]", lambda m: f"{m.mean_height:.3f}"),
        row("stride frequency [Hz] FR/FL/RR/RL", lambda m: legs(m.stride_hz, ".2f")),
        row("duty factor FR/FL/RR/RL", lambda m: legs(m.duty_factor, ".2f")),
        row("mean foot clearance [cm]", lambda m: legs(_cm(m.mean_clearance), ".1f")),
        row("peak foot clearance [cm]", lambda m: legs(_cm(m.peak_clearance), ".1f")),
        row(
            "contact sync diagonal / lateral",
            lambda m: f"{m.diagonal_sync:+.2f} / {m.lateral_sync:+.2f}",
        ),
        row("mean gate", lambda m: "[" + ", ".join(f"{g:.2f}" for g in m.mean_gate) + "]"),
    ]
    return "\n".join(lines) + "\n"


def _cm(d: dict[str, float]) -> dict[str, float]:
    return {k: v * 100.0 for k, v in d.items()}


def metrics_json(metrics: list[GaitMetrics]) -> str:
    return json.dumps([asdict(m) | {"mean_stride_hz": m.mean_stride_hz} for m in metrics], indent=2)


def plot_runs(runs: list[ComposedRun], path: str | Path, title: str) -> Path:
    """Foot clearance per leg over time, one panel per run, and the body velocity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs) + 1, 1, figsize=(10, 2.6 * (len(runs) + 1)), sharex=True)
    for ax, run in zip(axes, runs, strict=False):
        t = run.t
        for i, leg in enumerate(LEGS):
            ax.plot(t, run.clearance[:, i] * 100.0, label=leg, lw=1.0)
        ax.set_ylabel("foot clearance [cm]")
        ax.set_title(f"{run.label}: w = [" + ", ".join(f"{w:g}" for w in run.expert_scale) + "]")
        ax.legend(loc="upper right", ncol=4, fontsize=8)
    ax = axes[-1]
    for run in runs:
        ax.plot(run.t, run.trace.arrays()["base_lin_vel"][:, 0], label=f"{run.label} vx")
    ax.set_ylabel("body vx [m/s]")
    ax.set_xlabel("sim time [s]")
    ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def service_run(
    policy: str | Path,
    weights: list[float] | None,
    preset: str | None,
    script: ComposeScript | None = None,
    config: LockstepConfig | None = None,
    namespace: str = "moe_loco_compose",
    timeout_s: float = 10.0,
) -> tuple[ComposedRun, str]:
    """The composed scale set through a real controller node's ``set_expert_scale`` service
    (over ROS, by a client), then the same lockstep run on the policy runtime that node holds.

    Returns the run and the service's answer. The node runs on the mirror link in ``namespace``
    and is never started (no control ticks), so nothing but the service touches its runtime.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from moe_loco_controller.core.config import load_config
    from moe_loco_controller.nodes.controller_node import ControllerNode
    from moe_loco_msgs.srv import SetExpertScale

    owns = not rclpy.ok()
    if owns:
        rclpy.init()
    cfg = load_config().replace(
        **{"namespace": namespace, "link.source": "mirror", "policy": str(policy)}
    )
    node = ControllerNode(cfg, str(policy), None, node_name="moe_loco_compose_controller")
    client_node = Node("moe_loco_compose_client")
    client = client_node.create_client(SetExpertScale, f"{namespace}/set_expert_scale")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.add_node(client_node)
    try:
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise RuntimeError(f"{namespace}/set_expert_scale did not appear")
        request = SetExpertScale.Request(weights=list(weights or []), preset=preset or "")
        future = client.call_async(request)
        executor.spin_until_future_complete(future, timeout_sec=timeout_s)
        if not future.done():
            raise RuntimeError("set_expert_scale did not answer")
        answer = future.result()
        if not answer.success:
            raise ValueError(f"set_expert_scale refused: {answer.message}")
        message = f"{answer.message}; scale {list(answer.scale)}"
        run = run_composed(node.policy, None, script, config, label="composed via service")
    finally:
        executor.shutdown()
        client_node.destroy_node()
        node.destroy_node()
        if owns:
            rclpy.try_shutdown()
    return run, message
