"""A realistic controller run without real-time waiting, written into a bag as the node would.

The ControlCore is stepped at 50 Hz (with jitter) on synthetic Go2 states: LowState frames at
500 Hz (a step uses the newest, 0-2 ms old), joints following the PD targets through a lag,
the base pitching nose-up in the bipedal gait, noise on every sensor. The operator's joystick
publishes at 50 Hz with its own phase; the node's handling of commands (the latest message, a
mode request held for the next tick) and of services between ticks (expert scale, gait) is
reproduced, and every message the node would publish goes into the bag through StepWriter.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import policy_factory

from moe_loco_controller.bag import BagWriter, topic_types
from moe_loco_controller.core.config import Config
from moe_loco_controller.core.controller import ControlCore, Mode, OperatorCommand, Request
from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_controller.core.robot_state import JointCommand, RobotState
from moe_loco_controller.nodes.recorder import StepWriter

DT = 0.02
CROUCH = np.array([0.0, 1.2, -2.6] * 4)
T0 = 1000.0  # the controller's monotonic clock at its first step


def write_random_policy(path: Path, seed: int = 7) -> Path:
    """A test policy whose actions depend on every observation term (so replays must match)."""
    rng = np.random.default_rng(seed)
    meta = policy_factory.metadata()
    p, c = meta.observation.proprio_dim, meta.observation.command_dim
    return policy_factory.write_policy(
        path,
        weights=rng.normal(0.0, 0.05, (p, 12)),
        command_weights=rng.normal(0.0, 0.2, (c, 12)),
        bias=rng.normal(0.0, 0.1, 12),
    )


def quat_pitch(pitch: float) -> np.ndarray:
    """w, x, y, z of a rotation by ``pitch`` about the base y axis (negative: nose up)."""
    return np.array([math.cos(pitch / 2), 0.0, math.sin(pitch / 2), 0.0])


class SyntheticGo2:
    """Joints track the PD targets through a first-order lag (gains off: they sag to a crouch)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.q = CROUCH.copy()
        self.dq = np.zeros(12)
        self.pitch = 0.0
        self.tick = 0

    def advance(self, cmd: JointCommand, bipedal: bool, dt: float = DT) -> None:
        if np.all(cmd.kp > 0):
            target, tau = cmd.q, 0.05
        else:
            target, tau = CROUCH, 0.6
        new = self.q + (1.0 - math.exp(-dt / tau)) * (target - self.q)
        self.dq = (new - self.q) / dt
        self.q = new
        goal = -0.6 if bipedal and np.all(cmd.kp > 0) else 0.0
        self.pitch += (1.0 - math.exp(-dt / 0.3)) * (goal - self.pitch)
        self.tick += int(dt * 1000)

    def frame(self, stamp: float) -> RobotState:
        """A LowState frame as the link delivers it: float32 on the wire, float64 in the core."""
        r = self.rng

        def wire(a: np.ndarray) -> np.ndarray:
            return np.asarray(a, dtype=np.float32).astype(np.float64)

        return RobotState(
            q=wire(self.q + r.normal(0, 1e-3, 12)),
            dq=wire(self.dq + r.normal(0, 2e-2, 12)),
            tau_est=wire(r.normal(0, 0.5, 12)),
            quat_wxyz=wire(quat_pitch(self.pitch + r.normal(0, 5e-3))),
            gyro=wire(r.normal(0, 0.05, 3)),
            accel=wire(np.array([0.0, 0.0, 9.81]) + r.normal(0, 0.1, 3)),
            foot_force=r.integers(0, 200, 4).astype(np.int16),
            tick=self.tick,
            stamp=stamp,
        )


@dataclass
class Script:
    """The operator's joystick and the service calls over time [s since start]."""

    duration: float = 31.0
    joystick_from: float = 0.3
    commands: list[tuple[float, dict]] = field(default_factory=list)
    """(time, fields): from then on the joystick sends these fields (request: once)."""
    dropouts: list[tuple[float, float]] = field(default_factory=list)
    """(start, end): the joystick sends nothing."""
    services: list[tuple[float, str, object]] = field(default_factory=list)
    """(time, 'scale' | 'gait', value), called between control steps."""
    link_faults: list[tuple[float, float, str]] = field(default_factory=list)
    stale: list[tuple[float, float]] = field(default_factory=list)
    """(start, end): no new LowState frame (the controller reuses the last one)."""
    no_state_until: float = 0.05


def demo_script() -> Script:
    """31 s: stand, walk, gait switches by joystick and by service, expert scale changes, an
    e-stop and a reset, a joystick dropout, a link fault, a frame gap, and a last stand-up."""
    return Script(
        duration=31.0,
        commands=[
            (0.3, {"deadman": True}),
            (0.5, {"request": Request.STAND}),
            (3.0, {"request": Request.RUN}),
            (3.5, {"vx": 0.5, "wz": 0.2}),
            (8.0, {"gait": 1, "vx": 0.3, "wz": 0.0}),
            (14.0, {"gait": 0}),
            (15.0, {"gait": 1, "vy": 0.1}),
            (17.0, {"estop": True}),
            (17.5, {"estop": False}),
            (18.0, {"request": Request.RESET}),
            (18.5, {"request": Request.STAND}),
            (20.7, {"request": Request.RUN}),
            (21.0, {"gait": 0, "vx": 0.6, "vy": 0.0}),
            (25.0, {"vx": 0.2}),
            (26.5, {"request": Request.RESET}),
            (27.0, {"request": Request.STAND}),
            (29.2, {"request": Request.RUN}),
            (29.6, {"vx": 0.4}),
        ],
        dropouts=[(23.0, 23.7)],
        services=[
            (10.0, "scale", [0.5, 1.0, 1.0, 1.0, 1.0, 1.5]),
            (12.0, "gait", 0),
            (24.5, "scale", [1.0] * 6),
        ],
        link_faults=[(25.5, 25.56, "other_lowcmd_publisher")],
        stale=[(5.0, 5.03)],  # two steps on one frame: 40 ms, not stale
    )


def short_script() -> Script:
    """3.2 s with a 0.5 s stand-up: stand, run, a gait switch by service, a scale change, e-stop."""
    return Script(
        duration=3.2,
        joystick_from=0.1,
        commands=[
            (0.1, {"deadman": True}),
            (0.2, {"request": Request.STAND}),
            (0.9, {"request": Request.RUN}),
            (1.0, {"vx": 0.5}),
            (1.6, {"gait": 1, "vx": 0.3}),
            (2.8, {"estop": True}),
        ],
        services=[(1.9, "scale", [0.5, 1.0, 1.0, 1.0, 1.0, 1.5]), (2.2, "gait", 0)],
    )


@dataclass
class RunInfo:
    steps: int
    modes: list[int]
    gaits: list[int]
    bag: Path
    policy: Path


def record_run(bag: Path, policy: Path, config: Config, script: Script, seed: int = 1) -> RunInfo:
    """Step a ControlCore through ``script`` and write the node's messages into ``bag``."""
    rng = np.random.default_rng(seed)
    runtime = PolicyRuntime(policy)
    core = ControlCore(runtime, config.control)
    robot = SyntheticGo2(rng)
    modes, gaits = [], []
    joystick_phase = 0.007
    sent: dict = {"vx": 0.0, "vy": 0.0, "wz": 0.0, "gait": 0, "estop": False, "deadman": False}
    events = sorted(script.commands, key=lambda e: e[0])
    services = sorted(script.services, key=lambda e: e[0])
    operator: OperatorCommand | None = None
    pending = 0
    last_frame: RobotState | None = None
    next_msg = T0 + script.joystick_from + joystick_phase
    cmd = JointCommand.zero_torque()
    n = round(script.duration / DT)
    with BagWriter(bag, topic_types()) as writer:
        out = StepWriter(writer, policy_name=policy.name)
        for k in range(n):
            now = T0 + k * DT + float(rng.normal(0, 3e-4))
            rel = now - T0
            # joystick messages that arrived since the last tick (the node keeps the newest and
            # holds a mode request for the next tick)
            while next_msg <= now:
                t_rel = next_msg - T0
                if not any(a <= t_rel < b for a, b in script.dropouts):
                    request = 0
                    while events and events[0][0] <= t_rel:
                        fields = dict(events.pop(0)[1])
                        request = int(fields.pop("request", request))
                        sent.update(fields)
                    msg = OperatorCommand(**sent, request=request, stamp=next_msg)
                    out.command(msg)
                    if request:
                        pending = request
                    operator = msg
                next_msg += DT + float(rng.normal(0, 5e-4))
            # services between ticks
            while services and services[0][0] <= rel:
                _, kind, value = services.pop(0)
                if kind == "scale":
                    runtime.set_expert_scale(value)
                else:
                    core.set_gait(int(value), now - 0.01)
            # the robot state: the newest 500 Hz frame (none at first, none new in a gap)
            robot.advance(cmd, core.gait == 1)
            state = None
            if rel >= script.no_state_until:
                if any(a <= rel < b for a, b in script.stale) and last_frame is not None:
                    state = last_frame
                else:
                    state = last_frame = robot.frame(now - float(rng.uniform(0.0, 0.002)))
            applied = operator
            if operator is not None and pending:
                applied = dataclasses.replace(operator, request=pending)
                pending = 0
            faults = tuple((f, "link") for a, b, f in script.link_faults if a <= rel < b)
            result = core.step(state, applied, now, faults)
            out.step(result, state, applied, now, faults, compute_ms=0.1)
            cmd = result.command
            modes.append(int(result.status.mode))
            gaits.append(int(result.status.gait))
    return RunInfo(n, modes, gaits, bag, policy)


def mode_timeline(modes: list[int]) -> list[str]:
    """Run-length compressed mode names."""
    out: list[str] = []
    for m in modes:
        name = Mode(m).name
        if not out or out[-1] != name:
            out.append(name)
    return out
