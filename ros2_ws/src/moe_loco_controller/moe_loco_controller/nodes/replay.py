"""``moe-loco-replay BAG``: feed a recorded run back through the controller and compare targets.

Examples::

    moe-loco-replay runs/demo/bag                      # core mode: fast, deterministic, exact
    moe-loco-replay runs/demo/bag --mode node          # the real ControllerNode over ROS
    moe-loco-replay runs/demo/bag --drop 5 --seed 1    # inject faults: see the divergence / DAMP

**What a step consumed** (the bag holds it): ``<ns>/status`` gives the step's clock
(``control_time``), the operator command as applied with its arrival (``operator_command``,
``operator_time``), the link faults and the expert scale; the robot state is the
``<ns>/robot_state`` message whose header stamp the status names (``state_stamp``): on the robot
link, the mirror the controller published in the same step (``receive_time`` is its arrival on
the controller's clock); on mirror input (a controller fed on ``<ns>/robot_state``), the incoming
message itself, which arrived ``state_age_ms`` before the step. The pairing is exact, whatever
the recorder's delays. Service calls between steps are
reproduced: the expert scale each status reports is set before its step, and a gait the status
shows without an operator gait edge (``set_gait`` by service) is set before its step, at the
previous step's time.

**core** mode replays every step through a fresh :class:`ControlCore` with the same policy file
and configuration, and compares each step's joint command (q, dq, kp, kd, tau, as float32 on the
wire), mode, gait and (in RUN) gate weights with the recorded ones: exit 0 when all match within
``--tolerance`` (1e-6). The configuration is not in the bag: pass the controller YAML the run
used (``--config``) if it was not the packaged one. A bag that starts after its controller did
is replayed from its first PASSIVE step.

**node** mode runs the real :class:`ControllerNode` (mirror input, namespace ``moe_loco_replay``,
so a live system is never fed) on its own 50 Hz timer, in real time. Right after each of its
ticks (in its control thread) the replay publishes, over ROS, the next recorded step's robot-state
frame and operator command (when new) and calls the node's services for recorded expert-scale
and gait changes, so each tick consumes one recorded step's inputs. It asserts, for every step:
(1) the tick consumed the frame and the operator command published for it (else: a timing slip,
reported as such) and ran with the recorded expert scale; (2) the joint command the node
published on ROS equals, within ``--tolerance``, that of a :class:`ControlCore` stepped on exactly
the inputs the node consumed, at the node's clock; (3) mode, gait and gate weights equal the
recording's, and the joint command equals the recorded one within ``--tolerance`` in PASSIVE, RUN
and DAMP, which never read the clock (the policy sees frames, its last action, the velocity
command and the gait). STAND interpolates over the wall clock: its difference from the recording
is reported, not judged (it is checked by (2)). Operator-command ages follow real time, so a
recording that sat exactly on a command timeout may flip.

**Faults** (``--drop N``, ``--delay-ms X``, ``--corrupt N``) start at ``--fault-step`` (default:
a step the recording shows in RUN, chosen with ``--seed``): drop N consecutive robot-state frames,
deliver every frame from there on X ms later (a latency onset), or set one joint position of N
frames to NaN. The controller then uses the latest frame it has, as it would on the robot; the
report shows the first divergence and the safety reaction (DAMP and its faults).

Exit status: 0 all steps match, 1 divergence, 2 unusable bag, policy or arguments.
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rclpy.serialization import deserialize_message

from moe_loco_controller.bag import BagError, read_bag, topic_types
from moe_loco_controller.core import go2
from moe_loco_controller.core.config import Config, ConfigError, load_config
from moe_loco_controller.core.controller import ControlCore, Mode, OperatorCommand
from moe_loco_controller.core.expert_presets import validate_expert_scale
from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_controller.core.policy_metadata import PolicyFileError
from moe_loco_controller.core.robot_state import RobotState
from moe_loco_controller.nodes.messages import command_from_msg, robot_state_from_msg
from moe_loco_msgs.msg import ControllerStatus as StatusMsg
from moe_loco_msgs.msg import JointCommand as JointCommandMsg
from moe_loco_msgs.msg import LocoCommand
from moe_loco_msgs.msg import RobotState as RobotStateMsg

FIELDS = ("q", "dq", "kp", "kd", "tau")
OPERATOR_FIELDS = ("vx", "vy", "wz", "gait", "request", "estop", "deadman")
NO_STATE_AGE_MS = 1e38  # status.state_age_ms at or above this: the step had no robot state
REPLAY_NAMESPACE = "moe_loco_replay"


_MODES = frozenset(int(m) for m in Mode)


class ReplayError(Exception):
    """A replay that cannot run (policy, configuration, arguments)."""


# ---------------------------------------------------------------------- the recorded run
@dataclass(frozen=True)
class Frame:
    """One robot-state frame the controller received."""

    data: bytes
    """The recorded RobotState mirror (CDR)."""
    arrival: float
    """When the controller received it, on its clock: the state's stamp."""

    def msg(self) -> RobotStateMsg:
        return deserialize_message(self.data, RobotStateMsg)


@dataclass(frozen=True)
class RecordedStep:
    step: int
    control_time: float
    frame: int | None
    """Index into :attr:`RecordedRun.frames` of the state the step used; None: it had none."""
    operator: OperatorCommand | None
    operator_msg: LocoCommand
    link_faults: tuple[str, ...]
    expert_scale: np.ndarray
    gate: np.ndarray
    """The gate weights the step reports (float32)."""
    mode: int
    gait: int
    faults: tuple[str, ...]
    joint: JointCommandMsg | None
    """The recorded joint command of this step; None if the bag lacks it (not compared)."""


@dataclass
class RecordedRun:
    path: Path
    policy: str
    steps: list[RecordedStep]
    frames: list[Frame]
    pairing: str
    notes: list[str] = field(default_factory=list)

    def operator_key(self, k: int) -> tuple[Any, ...] | None:
        """What identifies the operator command of step ``k`` (values, request and arrival)."""
        s = self.steps[k]
        if s.operator is None:
            return None
        return (*(getattr(s.operator_msg, f) for f in OPERATOR_FIELDS), s.operator.stamp)


def _deserialize(path: Path, topic: str, stamp: int, data: bytes, cls: Any) -> Any:
    try:
        return deserialize_message(data, cls)
    except Exception as e:
        raise BagError(
            path,
            f"the message of {stamp} ns on {topic} cannot be deserialized as {cls.__name__} "
            f"({str(e).splitlines()[0] if str(e) else type(e).__name__}): damaged bag",
        ) from None


def _ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _stamp_ns(msg: Any) -> int:
    return _ns(msg.header.stamp)


def load_run(path: str | Path, namespace: str = "moe_loco") -> RecordedRun:
    """Read a bag and pair each recorded step with what it consumed (see the module docstring)."""
    try:
        topics = topic_types(namespace, ("status", "joint_command", "robot_state"))
    except ValueError as e:
        raise ReplayError(f"--namespace: {e}") from None
    bag = read_bag(path)
    t_status, t_joint, t_state = topics
    bag.check_topics(topics)
    notes = list(bag.notes)

    statuses: dict[int, StatusMsg] = {}
    for t, data in bag.of(t_status):
        msg = _deserialize(bag.path, t_status, t, data, StatusMsg)
        statuses.setdefault(int(msg.step), msg)
    joints: dict[int, JointCommandMsg] = {}
    for t, data in bag.of(t_joint):
        msg = _deserialize(bag.path, t_joint, t, data, JointCommandMsg)
        joints.setdefault(int(msg.step), msg)
    states: list[tuple[int, bytes, RobotStateMsg]] = [
        (t, data, _deserialize(bag.path, t_state, t, data, RobotStateMsg))
        for t, data in bag.of(t_state)
    ]
    by_stamp = {_stamp_ns(m): (data, m) for _, data, m in states}

    for s in statuses.values():
        if s.mode not in _MODES:
            raise BagError(
                bag.path, f"status of step {s.step}: mode {s.mode} is no controller mode"
            )
    ordered = [statuses[s] for s in sorted(statuses)]
    # contiguous steps only: a step missing from the bag breaks the chain of controller state
    for i in range(1, len(ordered)):
        if ordered[i].step != ordered[i - 1].step + 1:
            notes.append(
                f"status of step {ordered[i - 1].step + 1} is missing: replaying steps "
                f"{ordered[0].step}..{ordered[i - 1].step} only"
            )
            ordered = ordered[:i]
            break
    if ordered and ordered[0].step != 1:
        first_passive = next((i for i, s in enumerate(ordered) if s.mode == Mode.PASSIVE), None)
        if first_passive is None:
            raise BagError(
                bag.path,
                f"the bag starts at controller step {ordered[0].step} "
                "(recording started after the controller) and never shows it in "
                "PASSIVE: there is no known state to replay from",
            )
        notes.append(
            f"the bag starts at controller step {ordered[0].step}: replaying from step "
            f"{ordered[first_passive].step}, the first one in PASSIVE"
        )
        ordered = ordered[first_passive:]

    frames: list[Frame] = []
    steps: list[RecordedStep] = []
    # each status names the robot_state message whose frame its step used (state_stamp): the
    # step's own mirror on the robot link, the incoming message on mirror input
    own_mirror = any(_ns(s.state_stamp) == _stamp_ns(s) for s in ordered)
    last_key: float | int | None = None
    for s in ordered:
        frame: int | None = None
        if s.state_age_ms < NO_STATE_AGE_MS:
            found = by_stamp.get(_ns(s.state_stamp))
            if found is None:
                notes.append(
                    f"the robot state of step {s.step} is not in the bag: replaying "
                    f"steps up to {s.step - 1} only"
                )
                break
            data, m = found
            # when it arrived on the controller's clock: the mirror says so; an incoming frame's
            # arrival is the step's clock less the state's age
            arrival = (
                float(m.receive_time)
                if own_mirror
                else s.control_time - float(s.state_age_ms) * 1e-3
            )
            # one frame used by several steps: one incoming message, or one receive time in
            # several mirrors
            key = float(m.receive_time) if own_mirror else _ns(m.header.stamp)
            if key != last_key:
                frames.append(Frame(data, arrival))
                last_key = key
            frame = len(frames) - 1
        op_time = float(s.operator_time)
        operator = None if math.isnan(op_time) else command_from_msg(s.operator_command, op_time)
        steps.append(
            RecordedStep(
                step=int(s.step),
                control_time=float(s.control_time),
                frame=frame,
                operator=operator,
                operator_msg=s.operator_command,
                link_faults=tuple(s.link_faults),
                expert_scale=np.asarray(s.expert_scale, dtype=np.float32),
                gate=np.asarray(s.gate_weights, dtype=np.float32),
                mode=int(s.mode),
                gait=int(s.gait),
                faults=tuple(s.faults),
                joint=joints.get(int(s.step)),
            )
        )
    if not steps:
        raise BagError(bag.path, "no control step can be replayed from this bag")
    missing = sum(1 for s in steps if s.joint is None)
    if missing:
        notes.append(f"{missing} steps have no recorded joint command (not compared)")
    policies = sorted({s.policy for s in ordered if s.policy})
    if len(policies) > 1:
        notes.append(f"the statuses name several policies: {policies}")
    pairing = "by header stamp" + ("" if own_mirror else " (mirror-input bag)")
    return RecordedRun(bag.path, policies[0] if policies else "", steps, frames, pairing, notes)


# ---------------------------------------------------------------------- service calls
def service_calls(run: RecordedRun, gaits: int) -> dict[int, dict[str, Any]]:
    """Per step index: the expert scale and the gait to set before the step, as services did.

    The gait: the core switches on an operator gait *edge* (``cmd.gait`` differs from the last
    operator gait it saw; no command counts as gait 0), else it keeps its gait; so a recorded gait
    that neither explains was set by ``set_gait``. Decided from the recording alone, so a replay
    with injected faults calls the same services at the same steps.
    """
    calls: dict[int, dict[str, Any]] = collections.defaultdict(dict)
    operator_gait, gait, scale = 0, 0, None
    for k, s in enumerate(run.steps):
        if scale is None or not np.array_equal(scale, s.expert_scale):
            if k or not np.all(s.expert_scale == 1.0):
                calls[k]["scale"] = s.expert_scale
            scale = s.expert_scale
        g = s.operator.gait if s.operator is not None else 0
        expected = g if (g != operator_gait and 0 <= g < gaits) else gait
        operator_gait = g
        if expected != s.gait:
            calls[k]["gait"] = s.gait
        gait = s.gait
    return dict(calls)


# ---------------------------------------------------------------------- faults
@dataclass(frozen=True)
class Faults:
    drop: int = 0
    delay_ms: float = 0.0
    corrupt: int = 0
    seed: int = 0
    at_step: int | None = None
    """Controller step number where the faults start (default: chosen with ``seed``)."""

    @property
    def active(self) -> bool:
        return bool(self.drop or self.delay_ms or self.corrupt)


@dataclass(frozen=True)
class Delivery:
    """The robot state a replayed step has: a recorded frame, when it arrived, how corrupted."""

    frame: int
    arrival: float
    nan_joint: int | None = None


def plan_deliveries(run: RecordedRun, faults: Faults) -> tuple[list[Delivery | None], str]:
    """The state each step gets, with the faults applied, and a line describing the faults."""
    recorded = [
        None if s.frame is None else Delivery(s.frame, run.frames[s.frame].arrival)
        for s in run.steps
    ]
    if not faults.active:
        return recorded, ""
    if faults.drop < 0 or faults.corrupt < 0 or faults.delay_ms < 0:
        raise ReplayError("--drop, --delay-ms and --corrupt must be >= 0")
    rng = np.random.default_rng(faults.seed)
    with_frame = [k for k, s in enumerate(run.steps) if s.frame is not None]
    if not with_frame:
        raise ReplayError("no step of this bag has a robot state to inject faults into")
    if faults.at_step is not None:
        start = next((k for k, s in enumerate(run.steps) if s.step == faults.at_step), None)
        if start is None or run.steps[start].frame is None:
            raise ReplayError(
                f"--fault-step {faults.at_step}: no replayed step with a robot "
                f"state has that number ({run.steps[0].step}..{run.steps[-1].step})"
            )
    else:
        running = [k for k in with_frame if run.steps[k].mode == Mode.RUN]
        pool = running or with_frame
        pool = pool[: max(1, len(pool) - 25)]  # leave room to see the reaction
        start = int(pool[int(rng.integers(len(pool)))])
    first = run.steps[start].frame
    assert first is not None
    delay = faults.delay_ms * 1e-3
    dropped = set(range(first, first + faults.drop))
    corrupt = [f for f in range(first, len(run.frames)) if f not in dropped][: faults.corrupt]
    nan_joint = {f: int(rng.integers(12)) for f in corrupt}

    def arrival(f: int) -> float:
        return run.frames[f].arrival + (delay if f >= first else 0.0)

    plan: list[Delivery | None] = []
    for s in run.steps:
        chosen = None
        if s.frame is not None:
            for f in range(s.frame, -1, -1):  # the newest frame the controller has by now
                if f < first or (f not in dropped and arrival(f) <= s.control_time):
                    chosen = Delivery(f, arrival(f), nan_joint.get(f))
                    break
        plan.append(chosen)
    parts = []
    if faults.drop:
        parts.append(f"drop {faults.drop} frames")
    if faults.delay_ms:
        parts.append(f"delay frames by {faults.delay_ms:g} ms")
    if faults.corrupt:
        joints = sorted({go2.JOINT_NAMES[j] for j in nan_joint.values()})
        parts.append(f"corrupt {len(corrupt)} frames (NaN in q of {', '.join(joints)})")
    s0 = run.steps[start]
    how = "--fault-step" if faults.at_step is not None else f"seed {faults.seed}"
    t = s0.control_time - run.steps[0].control_time
    where = f"faults from step {s0.step} (t = {t:.2f} s, {Mode(s0.mode).name}, {how}): "
    return plan, where + ", ".join(parts)


def delivered_msg(run: RecordedRun, d: Delivery) -> RobotStateMsg:
    msg = run.frames[d.frame].msg()
    if d.nan_joint is not None:
        q = np.array(msg.q, dtype=np.float32)
        q[d.nan_joint] = np.nan
        msg.q = q
    return msg


# ---------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class Divergence:
    step: int
    time: float
    """Seconds since the first replayed step."""
    what: str
    """'q[FR_hip_joint]', 'kp[...]', 'mode', 'gait', 'operator command' or 'timing slip'."""
    recorded: Any
    replayed: Any
    recorded_mode: str
    replayed_mode: str
    recorded_faults: tuple[str, ...]
    replayed_faults: tuple[str, ...]
    detail: str = ""

    def describe(self) -> str:
        if isinstance(self.recorded, float) and isinstance(self.replayed, float):
            values = (
                f"recorded {self.recorded:.7g}, replayed {self.replayed:.7g} "
                f"(|diff| {abs(self.recorded - self.replayed):.3g})"
            )
        else:
            values = f"recorded {self.recorded}, replayed {self.replayed}"
        text = (
            f"step {self.step} (t = {self.time:.2f} s): {self.what}: {values}\n"
            f"    recorded: mode {self.recorded_mode}, faults {list(self.recorded_faults)}\n"
            f"    replayed: mode {self.replayed_mode}, faults {list(self.replayed_faults)}"
        )
        return text + (f"\n    {self.detail}" if self.detail else "")


@dataclass
class ReplayReport:
    mode: str
    bag: Path
    policy: Path
    tolerance: float
    steps_replayed: int = 0
    steps_compared: int = 0
    steps_diverged: int = 0
    max_diff: float = 0.0
    """Over the steps compared at ``tolerance``."""
    stand_steps: int = 0
    """Node mode: STAND steps (their targets follow the wall clock: not judged against the
    recording, only against the core at the node's clock)."""
    stand_max_diff: float = 0.0
    node_core_max_diff: float = 0.0
    """Node mode: max |diff| between the node's targets and the core's on the same inputs."""
    first_divergence: Divergence | None = None
    damp: tuple[int, tuple[str, ...]] | None = None
    """(step, faults) where the replay entered DAMP and the recording was not in DAMP."""
    faults: str = ""
    pairing: str = ""
    warnings: list[str] = field(default_factory=list)
    """What was wrong with the bag (truncated, started late, ...); the CLI prints them on
    stderr."""
    notes: list[str] = field(default_factory=list)
    """What happened during the replay that the summary does not say."""

    @property
    def ok(self) -> bool:
        return self.first_divergence is None and self.steps_compared > 0

    def format(self) -> str:
        lines = [
            f"replay ({self.mode} mode) of {self.bag} with {self.policy.name}: "
            f"{self.steps_replayed} steps, frames paired {self.pairing}"
        ]
        lines += [f"  note: {n}" for n in self.notes]
        if self.faults:
            lines.append(f"  {self.faults}")
        if self.first_divergence is not None:
            lines.append("  first divergence at " + self.first_divergence.describe())
        if self.damp is not None:
            lines.append(
                f"  safety reaction: the replay entered DAMP at step {self.damp[0]} "
                f"(faults: {', '.join(self.damp[1]) or 'none'})"
            )
        verdict = (
            "all joint targets match"
            if self.ok
            else f"{self.steps_diverged} steps diverge"
            if self.steps_compared
            else "nothing compared"
        )
        stand = (
            f"; {self.stand_steps} STAND steps follow the wall clock (max |diff| "
            f"{self.stand_max_diff:.3g}, node vs core at the node's clock "
            f"{self.node_core_max_diff:.3g})"
            if self.mode == "node"
            else ""
        )
        lines.append(
            f"summary: {self.steps_compared} steps compared, max |diff| = "
            f"{self.max_diff:.3g} (tolerance {self.tolerance:g}){stand}: {verdict}"
        )
        return "\n".join(lines)


def _arrays(source: Any) -> np.ndarray:
    return np.stack([np.asarray(getattr(source, f), dtype=np.float32) for f in FIELDS])


def _abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return np.where(same, 0.0, np.where(np.isfinite(d), d, np.inf))


class Comparator:
    """Accumulates per-step comparisons into a :class:`ReplayReport`."""

    def __init__(self, run: RecordedRun, report: ReplayReport) -> None:
        self.run, self.report = run, report
        self.t0 = run.steps[0].control_time

    def diverge(
        self,
        k: int,
        what: str,
        recorded: Any,
        replayed: Any,
        replayed_mode: int,
        replayed_faults: Sequence[str],
        detail: str = "",
    ) -> None:
        s, r = self.run.steps[k], self.report
        r.steps_diverged += 1
        if r.first_divergence is None:
            r.first_divergence = Divergence(
                s.step,
                s.control_time - self.t0,
                what,
                recorded,
                replayed,
                Mode(s.mode).name,
                Mode(replayed_mode).name,
                s.faults,
                tuple(replayed_faults),
                detail,
            )

    def compare(
        self,
        k: int,
        mode: int,
        gait: int,
        faults: Sequence[str],
        command: Any,
        gate: Any,
        timed: bool = False,
    ) -> None:
        """Step ``k``'s replayed outcome against the recording: ``command`` (with q, dq, kp, kd,
        tau), mode, gait and the gate weights actually applied. ``timed``: a step whose targets
        depend on the wall clock (node mode, STAND): its difference is reported, not judged."""
        s, r = self.run.steps[k], self.report
        r.steps_replayed += 1
        if mode == Mode.DAMP and s.mode != Mode.DAMP and r.damp is None:
            r.damp = (s.step, tuple(faults))
        if s.joint is None:
            return
        r.steps_compared += 1
        diff = _abs_diff(_arrays(command), _arrays(s.joint))
        worst = float(diff.max())
        if timed:
            r.stand_steps += 1
            r.stand_max_diff = max(r.stand_max_diff, worst)
        else:
            r.max_diff = max(r.max_diff, worst)
        if worst > r.tolerance and not timed:
            i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
            self.diverge(
                k,
                f"{FIELDS[i]}[{go2.JOINT_NAMES[j]}]",
                float(_arrays(s.joint)[i, j]),
                float(_arrays(command)[i, j]),
                mode,
                faults,
            )
        elif mode != s.mode:
            self.diverge(k, "mode", Mode(s.mode).name, Mode(mode).name, mode, faults)
        elif gait != s.gait:
            self.diverge(k, "gait", s.gait, gait, mode, faults)
        elif s.mode == Mode.RUN:  # elsewhere the gate is stale telemetry of the last RUN
            g = np.asarray(gate, dtype=np.float32)
            if g.shape != s.gate.shape:
                self.diverge(k, "gate weights", s.gate.tolist(), g.tolist(), mode, faults)
            elif g.size and (gd := _abs_diff(g, s.gate)).max() > self.report.tolerance:
                i = int(np.argmax(gd))
                self.diverge(k, f"gate[{i}]", float(s.gate[i]), float(g[i]), mode, faults)


def check_run_fits(run: RecordedRun, core: ControlCore) -> None:
    """``ReplayError`` unless every recorded step can be replayed with this policy: a known mode,
    a finite clock, and gaits, expert scales and gate weights that fit the policy (one of another
    expert count does not)."""
    n, gaits = core.policy.num_experts, len(core.metadata.gaits)
    for s in run.steps:
        if s.mode not in _MODES:
            raise ReplayError(f"step {s.step} was recorded in mode {s.mode}, no controller mode")
        if not math.isfinite(s.control_time):
            raise ReplayError(f"step {s.step} has no finite control time ({s.control_time})")
        if not 0 <= s.gait < gaits:
            raise ReplayError(
                f"step {s.step} was recorded in gait {s.gait}; this policy has {gaits} gaits"
            )
        if len(s.gate) != n:
            raise ReplayError(
                f"step {s.step} recorded {len(s.gate)} gate weights; this policy has {n} experts"
            )
        try:
            validate_expert_scale(s.expert_scale, n)
        except ValueError as e:
            raise ReplayError(
                f"step {s.step}: its recorded expert scale cannot be set on this policy: {e}"
            ) from None


# ---------------------------------------------------------------------- core mode
def _prime(core: ControlCore, run: RecordedRun, calls: dict[int, dict[str, Any]]) -> None:
    """For a bag that starts after its controller did: the gait state the core had in the first
    replayed (PASSIVE) step, which a fresh core lacks (the last operator gait it saw is private
    to the core; nothing else of a PASSIVE core carries over to later steps)."""
    first = run.steps[0]
    if first.step == 1:
        return
    core._operator_gait = first.operator.gait if first.operator is not None else 0
    if first.gait != core.gait:
        core.set_gait(first.gait, -math.inf)
    calls.get(0, {}).pop("gait", None)


def replay_core(
    run: RecordedRun,
    policy_path: Path,
    config: Config,
    faults: Faults = Faults(),
    tolerance: float = 1e-6,
    runtime: PolicyRuntime | None = None,
) -> ReplayReport:
    """Every recorded step through a fresh :class:`ControlCore` (see the module docstring).

    ``runtime``: that policy file already loaded, to reuse (its state and scale are reset)."""
    policy = runtime if runtime is not None else PolicyRuntime(policy_path, device="cpu")
    policy.reset()
    policy.set_expert_scale(np.ones(policy.num_experts))
    core = ControlCore(policy, config.control)
    check_run_fits(run, core)
    plan, fault_text = plan_deliveries(run, faults)
    calls = service_calls(run, len(core.metadata.gaits))
    report = ReplayReport(
        "core",
        run.path,
        policy_path,
        tolerance,
        faults=fault_text,
        pairing=run.pairing,
        warnings=list(run.notes),
    )
    cmp = Comparator(run, report)
    core.step_count = run.steps[0].step - 1
    _prime(core, run, calls)
    previous = -math.inf
    states: dict[Delivery, RobotState] = {}
    for k, s in enumerate(run.steps):
        call = calls.get(k, {})
        if "scale" in call:
            policy.set_expert_scale(call["scale"])
        if "gait" in call:
            core.set_gait(call["gait"], previous)
        d = plan[k]
        state = None
        if d is not None:
            state = states.get(d)
            if state is None:
                state = states[d] = robot_state_from_msg(delivered_msg(run, d), d.arrival)
        result = core.step(
            state,
            s.operator,
            s.control_time,
            tuple((f, "recorded link fault") for f in s.link_faults),
        )
        st = result.status
        cmp.compare(k, int(st.mode), int(st.gait), st.faults, result.command, st.gate)
        previous = s.control_time
    return report


# ---------------------------------------------------------------------- node mode
def replay_node(
    run: RecordedRun,
    policy_path: Path,
    config: Config,
    faults: Faults = Faults(),
    tolerance: float = 1e-6,
    namespace: str = REPLAY_NAMESPACE,
    timeout_s: float = 10.0,
) -> ReplayReport:
    """The recorded inputs through a real :class:`ControllerNode` over ROS, in real time."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from moe_loco_controller.nodes.controller_node import ControllerNode
    from moe_loco_msgs.srv import SetExpertScale, SetGait

    class Instrumented(ControllerNode):
        """The controller node, plus a record of which published frame each tick consumed and a
        hook run in its control thread right after each tick (where the replay feeds it)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.frame_lock = threading.Lock()
            self.in_flight: collections.deque[int] = collections.deque()
            self.current: int | None = None
            self.consumed: dict[int, tuple[int | None, RobotState | None]] = {}
            self.after_tick: Callable[[int], None] | None = None
            super().__init__(*args, **kwargs)

        def _on_state(self, msg: RobotStateMsg) -> None:
            with self.frame_lock:
                super()._on_state(msg)
                self.current = self.in_flight.popleft() if self.in_flight else -1

        def _latest(self) -> tuple[RobotState | None, Any]:  # what a tick uses
            with self.frame_lock:
                state, stamp = super()._latest()
                frame = None if state is None else self.current
                self.consumed[self.core.step_count + 1] = (frame, state)
            return state, stamp

        def control_tick(self, deadline: float, lateness: float) -> None:
            super().control_tick(deadline, lateness)
            if self.after_tick is not None:
                self.after_tick(self.core.step_count)

    check_run_fits(run, ControlCore(PolicyRuntime(policy_path, device="cpu"), config.control))
    plan, fault_text = plan_deliveries(run, faults)
    report = ReplayReport(
        "node",
        run.path,
        policy_path,
        tolerance,
        faults=fault_text,
        pairing=run.pairing,
        warnings=list(run.notes),
    )
    cfg = config.replace(**{"namespace": namespace, "link.source": "mirror"})
    owns_rclpy = not rclpy.ok()
    if owns_rclpy:
        rclpy.init()
    node = Instrumented(cfg, policy_path, None, node_name="moe_loco_replay_controller")
    calls = service_calls(run, len(node.core.metadata.gaits))
    driver = Node("moe_loco_replay_driver")
    state_pub = driver.create_publisher(RobotStateMsg, f"{namespace}/robot_state", 50)
    cmd_pub = driver.create_publisher(LocoCommand, f"{namespace}/command", 50)
    statuses: dict[int, StatusMsg] = {}
    joints: dict[int, JointCommandMsg] = {}
    driver.create_subscription(
        StatusMsg, f"{namespace}/status", lambda m: statuses.__setitem__(int(m.step), m), 500
    )
    driver.create_subscription(
        JointCommandMsg,
        f"{namespace}/joint_command",
        lambda m: joints.__setitem__(int(m.step), m),
        500,
    )
    clients = {
        "scale": driver.create_client(SetExpertScale, f"{namespace}/set_expert_scale"),
        "gait": driver.create_client(SetGait, f"{namespace}/set_gait"),
    }
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.add_node(driver)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()

    # what to send after the tick before each recorded step, prepared in advance
    feed: list[tuple[Any, Any, int | None, list[Any]]] = []
    last_frame: Delivery | None = None
    last_operator: tuple[Any, ...] | None = None
    published: dict[int, tuple[int | None, Any]] = {}
    for k, s in enumerate(run.steps):
        requests: list[Any] = []
        call = calls.get(k, {})
        if "scale" in call:
            weights = [float(w) for w in call["scale"]]
            requests.append(("scale", SetExpertScale.Request(weights=weights)))
        if "gait" in call:
            requests.append(("gait", SetGait.Request(gait=int(call["gait"]))))
        key = run.operator_key(k)
        operator_msg = s.operator_msg if key is not None and key != last_operator else None
        last_operator = key
        d = plan[k]
        state_msg = None
        if d is not None and d != last_frame:
            state_msg = delivered_msg(run, d)
            last_frame = d
        feed.append((operator_msg, state_msg, None if d is None else d.frame, requests))
        published[k] = (None if d is None else d.frame, key)

    mapping: dict[int, int] = {}
    futures: list[tuple[str, Any]] = []
    errors: list[BaseException] = []
    done = threading.Event()
    cursor = [0]

    def after_tick(step_number: int) -> None:
        """In the node's control thread, right after a tick: the next recorded step's inputs."""
        k = cursor[0]
        if k >= len(feed):
            done.set()
            return
        cursor[0] = k + 1
        try:
            if k == 0:
                with node._lock:
                    _prime(node.core, run, calls)
            operator_msg, state_msg, frame, requests = feed[k]
            for kind, request in requests:
                futures.append((kind, clients[kind].call_async(request)))
            if operator_msg is not None:
                cmd_pub.publish(operator_msg)
            if state_msg is not None:
                with node.frame_lock:
                    node.in_flight.append(frame)
                state_pub.publish(state_msg)
            mapping[k] = step_number + 1  # the tick that consumes them
        except Exception as e:  # report it in the caller's thread
            errors.append(e)
            done.set()

    def wait_for(predicate: Callable[[], bool], what: str) -> None:
        end = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > end:
                raise ReplayError(f"node mode: timed out waiting for {what}")
            time.sleep(0.005)

    try:
        wait_for(
            lambda: (
                state_pub.get_subscription_count() > 0
                and cmd_pub.get_subscription_count() > 0
                and node.status_pub.get_subscription_count() > 0
                and node.joint_pub.get_subscription_count() > 0
            ),
            "discovery",
        )
        for kind in {kind for _, _, _, reqs in feed for kind, _ in reqs}:
            if not clients[kind].wait_for_service(timeout_sec=timeout_s):
                raise ReplayError(f"node mode: the controller's {kind} service is not there")
        node.after_tick = after_tick
        node.start()
        if not done.wait(timeout=len(feed) * node.core.control_dt * 3 + timeout_s):
            raise ReplayError("node mode: the controller node stopped ticking")
        if errors:
            raise ReplayError(f"node mode: feeding the node failed: {errors[0]!r}")
        last = mapping[len(feed) - 1]
        wait_for(lambda: last in joints and last in statuses, "the node's last outputs")
        wait_for(lambda: all(f.done() for _, f in futures), "the service responses")
        for kind, f in futures:
            if not f.result().success:
                report.notes.append(f"set_{kind} refused by the node: {f.result().message}")
    finally:
        node.after_tick = None
        node.stop(damp=False)
        executor.shutdown()
        spinner.join(timeout=5.0)
        driver.destroy_node()
        node.destroy_node()
        if owns_rclpy:
            rclpy.try_shutdown()

    # the core, stepped on exactly what the node consumed, at the node's clock
    shadow_policy = PolicyRuntime(policy_path, device="cpu")
    shadow = ControlCore(shadow_policy, cfg.control)
    shadow_calls = service_calls(run, len(shadow.metadata.gaits))
    _prime(shadow, run, shadow_calls)
    cmp = Comparator(run, report)
    previous = -math.inf
    for k, s in enumerate(run.steps):
        n = mapping[k]
        status, joint = statuses.get(n), joints.get(n)
        if status is None or joint is None:
            report.notes.append(f"the node's outputs of step {n} were not received")
            break
        frame, key = published[k]
        used, state = node.consumed.get(n, (-2, None))
        if used != frame:
            cmp.diverge(
                k,
                "timing slip",
                f"frame {frame}",
                f"frame {used}",
                status.mode,
                status.faults,
                "the node's tick did not consume the frame published for it (it arrived "
                "late): the steps after it are not comparable",
            )
            report.steps_replayed += 1
            break
        op_time = float(status.operator_time)
        operator = (
            None if math.isnan(op_time) else command_from_msg(status.operator_command, op_time)
        )
        got = (
            None
            if operator is None
            else tuple(getattr(status.operator_command, f) for f in OPERATOR_FIELDS)
        )
        want = None if key is None else key[:-1]
        if got != want:
            cmp.diverge(k, "operator command", want, got, status.mode, status.faults)
        scale = np.asarray(status.expert_scale, dtype=np.float32)
        if not np.array_equal(scale, s.expert_scale):
            cmp.diverge(
                k,
                "expert scale",
                s.expert_scale.tolist(),
                scale.tolist(),
                status.mode,
                status.faults,
                "the set_expert_scale call came too late",
            )
        call = shadow_calls.get(k, {})
        if "scale" in call:
            shadow_policy.set_expert_scale(call["scale"])
        if "gait" in call:
            shadow.set_gait(call["gait"], previous)
        previous = float(status.control_time)
        expected = shadow.step(state, operator, float(status.control_time))
        worst = float(_abs_diff(_arrays(joint), _arrays(expected.command)).max())
        report.node_core_max_diff = max(report.node_core_max_diff, worst)
        if worst > tolerance or int(expected.status.mode) != status.mode:
            cmp.diverge(
                k,
                "node vs core",
                f"core: {expected.status.mode_name} {_arrays(expected.command)[0].tolist()}",
                f"node: {Mode(status.mode).name} {_arrays(joint)[0].tolist()}",
                status.mode,
                status.faults,
                "the node's output differs from the core's on the same inputs at the same times",
            )
        gate = np.asarray(status.gate_weights, dtype=np.float32)
        timed = s.mode == Mode.STAND and status.mode == Mode.STAND
        cmp.compare(k, int(status.mode), int(status.gait), status.faults, joint, gate, timed)
    return report


# ---------------------------------------------------------------------- the command line
def find_recorded_policy(run: RecordedRun, search: Sequence[Path]) -> Path:
    """The policy file the bag names, looked up in ``search``."""
    if not run.policy:
        raise ReplayError("the bag names no policy (status.policy is empty): pass --policy")
    for d in search:
        if (d / run.policy).is_file():
            return d / run.policy
    raise ReplayError(
        f"the bag was recorded with policy {run.policy!r}, which is not in "
        f"{[str(d) for d in search]}: pass --policy"
    )


def policy_search_dirs(bag: Path) -> list[Path]:
    from moe_loco_controller.nodes.bringup import default_policy_dirs

    here = bag if bag.is_dir() else bag.parent
    return [here, here.parent, *default_policy_dirs()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="moe-loco-replay",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("bag", type=Path, help="rosbag2 directory or .mcap file")
    p.add_argument(
        "--policy",
        type=Path,
        help="policy .onnx (default: the one the bag names, "
        "looked up beside the bag and in policies/)",
    )
    p.add_argument("--config", type=Path, help="controller YAML (default: the packaged one)")
    p.add_argument("--mode", choices=("core", "node"), default="core")
    p.add_argument("--namespace", help="namespace of the recorded topics (default: config)")
    p.add_argument("--tolerance", type=float, default=1e-6, help="max |diff| of a joint target")
    g = p.add_argument_group("faults (for tests)")
    g.add_argument(
        "--drop", type=int, default=0, metavar="N", help="drop N consecutive robot-state frames"
    )
    g.add_argument(
        "--delay-ms",
        type=float,
        default=0.0,
        metavar="X",
        help="deliver the frames from the fault step on X ms late",
    )
    g.add_argument(
        "--corrupt", type=int, default=0, metavar="N", help="NaN in one joint position of N frames"
    )
    g.add_argument("--seed", type=int, default=0, help="chooses the fault step and joints")
    g.add_argument(
        "--fault-step",
        type=int,
        metavar="STEP",
        help="controller step where faults start (default: seeded, in RUN)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config)
        run = load_run(args.bag, args.namespace or config.namespace)
        for note in run.notes:
            print(f"moe-loco-replay: warning: {note}", file=sys.stderr)
        if args.policy is not None:
            if not args.policy.is_file():
                raise ReplayError(f"--policy {args.policy}: no such file")
            policy = args.policy
        else:
            policy = find_recorded_policy(run, policy_search_dirs(args.bag))
        faults = Faults(args.drop, args.delay_ms, args.corrupt, args.seed, args.fault_step)
        replay = replay_core if args.mode == "core" else replay_node
        report = replay(run, policy, config, faults, args.tolerance)
    except (BagError, ReplayError, ConfigError, PolicyFileError) as e:
        print(f"moe-loco-replay: {e}", file=sys.stderr)
        return 2
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
