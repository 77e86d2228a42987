"""Lockstep sim-to-sim: the controller core driven directly by the simulated Go2, no DDS, no ROS.

Physics runs at its fixed timestep (0.005 s, 200 Hz) with the motors' PD law applied at every
physics step from the latest joint command (:class:`~moe_loco_sim.robot.SimRobot`); every control
period of sim time (the policy's, 0.02 s) the core steps once, on a
:class:`~moe_loco_controller.core.robot_state.RobotState` made from the sim exactly as the bridge
puts it on the wire (:func:`~moe_loco_sim.lowlevel_state.robot_state_from_frame`), and its new
command acts from that instant. Sim time is the core's clock. A scripted operator
(:class:`OperatorEvent` s) plays the joystick: each event's command holds until the next one and is
re-sent every control step (as the joystick node does at 50 Hz); its mode request is delivered
once. Scripted :class:`Push` es knock the robot. Nothing here reads a wall clock or an unseeded
random source, so the same policy, seed and inputs give bit-identical runs, as fast as the CPU
allows. Each control step is recorded in a :class:`LockstepTrace`::

    h = LockstepHarness("policies/x.onnx", load_config().control, script=standard_script())
    trace = h.run(20.0)
    trace.modes_timeline()
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moe_loco_controller.core import go2
from moe_loco_controller.core.controller import (
    ControlCore,
    ControllerConfig,
    Mode,
    OperatorCommand,
    Request,
    StepResult,
)
from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_sim.conventions import convention
from moe_loco_sim.go2_model import DEFAULT_TIMESTEP
from moe_loco_sim.lowlevel_state import robot_state_from_frame
from moe_loco_sim.robot import SimRobot
from moe_loco_sim.scene import Go2Scene, build_scene


@dataclass(frozen=True)
class OperatorEvent:
    """From sim time ``t`` on, the operator sends ``command`` (None: the operator goes silent).

    ``command.request`` is delivered once, at the first control step at or after ``t``; the other
    fields hold until the next event. ``command.stamp`` is ignored (each send is stamped now).
    """

    t: float
    command: OperatorCommand | None


def operator(
    t: float,
    vx: float = 0.0,
    vy: float = 0.0,
    wz: float = 0.0,
    gait: int = 0,
    request: int = Request.NONE,
    deadman: bool = True,
    estop: bool = False,
) -> OperatorEvent:
    """An :class:`OperatorEvent` with the deadman held (a shorthand for scripts)."""
    return OperatorEvent(
        t, OperatorCommand(vx, vy, wz, gait, int(request), estop=estop, deadman=deadman)
    )


def standard_script(
    stand_at: float = 0.5,
    run_at: float = 3.0,
    walk_s: float = 4.0,
    vx_quad: float = 0.5,
    vx_biped: float = 0.3,
) -> list[OperatorEvent]:
    """Stand up, walk quadrupedally, switch to bipedal, walk, switch back, stop (gait 0 is
    quadrupedal, 1 bipedal: the policy's metadata order)."""
    t = run_at + 0.5
    return [
        operator(0.0),
        operator(stand_at, request=Request.STAND),
        operator(run_at, request=Request.RUN),
        operator(t, vx=vx_quad),
        operator(t + walk_s, gait=1),
        operator(t + walk_s + 2.0, vx=vx_biped, gait=1),
        operator(t + 2 * walk_s + 2.0, gait=1),
        operator(t + 2 * walk_s + 4.0, gait=0),
        operator(t + 2 * walk_s + 6.0),
    ]


@dataclass(frozen=True)
class Push:
    """An external force [N] and torque [N m] (world frame) on the base's centre of mass over
    ``[t, t + duration)`` of sim time."""

    t: float
    duration: float
    force: tuple[float, float, float] = (0.0, 0.0, 0.0)
    torque: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def active(self, now: float) -> bool:
        return self.t <= now < self.t + self.duration


@dataclass(frozen=True)
class LockstepConfig:
    """The simulated world of a lockstep run."""

    terrain: str = "plane"
    contact: str = "menagerie"
    """Contact preset: ``menagerie`` (sim-to-sim validation) or ``cheap`` (training's)."""
    timestep: float = DEFAULT_TIMESTEP
    spawn: str | tuple[float, ...] = "lie"
    """Start pose (``lie``, ``stand`` or 12 joint positions, SDK order)."""
    joint_noise: float = 0.02
    """Standard deviation of the start pose's random perturbation [rad], drawn from ``seed``."""
    seed: int = 0
    convention: str = "go2"
    """The simulator's behaviour (:mod:`moe_loco_sim.conventions`): ``go2``, or ``unitree_mujoco``
    (a PD from the previous physics step's joint state, its model's joint damping)."""


_FIELDS_1D = ("t", "mode", "gait", "base_height", "stand_progress")
_FIELDS_2D = (
    "command",
    "base_pos",
    "base_quat",
    "base_lin_vel",
    "base_lin_vel_world",
    "base_ang_vel",
    "estimated_lin_vel",
    "joint_pos",
    "joint_torque",
    "joint_target",
    "kp",
    "kd",
    "gate",
    "expert_scale",
)


@dataclass
class LockstepTrace:
    """One row per control step (arrays after :meth:`LockstepHarness.run`).

    Truth is the sim's at the control instant: ``base_lin_vel`` / ``base_ang_vel`` in the base
    frame, ``base_lin_vel_world``, ``base_pos``, ``base_quat`` (w, x, y, z), ``base_height`` (z of
    the base origin), ``joint_pos``, ``joint_torque`` (applied over the physics step that ended at
    the instant). The controller's side: ``mode`` (Mode values), ``gait``,
    ``command`` (vx, vy, wz applied after limits), ``joint_target`` / ``kp`` / ``kd`` (the joint
    command sent; PASSIVE sends PosStopF targets with kp 0), ``gate``, ``expert_scale``,
    ``estimated_lin_vel``, ``stand_progress``; ``faults`` per step and ``events`` (t, text).
    """

    t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mode: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    gait: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    base_height: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stand_progress: np.ndarray = field(default_factory=lambda: np.zeros(0))
    command: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    base_pos: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    base_quat: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    base_lin_vel: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    base_lin_vel_world: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    base_ang_vel: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    estimated_lin_vel: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    joint_pos: np.ndarray = field(default_factory=lambda: np.zeros((0, 12)))
    joint_torque: np.ndarray = field(default_factory=lambda: np.zeros((0, 12)))
    joint_target: np.ndarray = field(default_factory=lambda: np.zeros((0, 12)))
    kp: np.ndarray = field(default_factory=lambda: np.zeros((0, 12)))
    kd: np.ndarray = field(default_factory=lambda: np.zeros((0, 12)))
    gate: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    expert_scale: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    faults: list[tuple[str, ...]] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.t)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every numeric column by name."""
        return {name: getattr(self, name) for name in (*_FIELDS_1D, *_FIELDS_2D)}

    def digest(self) -> str:
        """SHA-256 of every column's bytes, the faults and the events: equal iff bit-identical."""
        h = hashlib.sha256()
        for name, a in self.arrays().items():
            h.update(name.encode())
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(repr(self.faults).encode())
        h.update(repr(self.events).encode())
        return h.hexdigest()

    def first_time(self, mode: Mode) -> float | None:
        """Sim time of the first control step in ``mode`` (None if never)."""
        hit = np.flatnonzero(self.mode == int(mode))
        return float(self.t[hit[0]]) if hit.size else None

    def modes_timeline(self) -> list[tuple[float, str]]:
        """(time, mode name) at the start and at every mode change."""
        out: list[tuple[float, str]] = []
        for i, m in enumerate(self.mode):
            if i == 0 or m != self.mode[i - 1]:
                out.append((float(self.t[i]), Mode(int(m)).name))
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the numeric columns to an ``.npz`` file (faults and events as text arrays)."""
        p = Path(path)
        np.savez_compressed(
            p,
            **self.arrays(),
            faults=np.array([",".join(f) for f in self.faults]),
            event_t=np.array([t for t, _ in self.events]),
            event_text=np.array([e for _, e in self.events]),
        )
        return p


class LockstepHarness:
    """The control core and a simulated Go2 in one deterministic loop. See the module docstring.

    ``policy``: a policy file or a loaded :class:`PolicyRuntime` (its recurrent state and expert
    scale are this run's). ``controller``: the core's configuration (``load_config().control``
    for the controller YAML's; default :class:`ControllerConfig`). ``scene``: a prebuilt scene to
    reuse (its model is only read, so a convention's joint damping must already be on it:
    ``convention(name).apply(scene)``); else one is built from ``config``.
    """

    def __init__(
        self,
        policy: str | os.PathLike[str] | PolicyRuntime,
        controller: ControllerConfig | None = None,
        config: LockstepConfig | None = None,
        script: Sequence[OperatorEvent] = (),
        pushes: Sequence[Push] = (),
        scene: Go2Scene | None = None,
    ) -> None:
        self.config = c = config or LockstepConfig()
        self.policy = policy if isinstance(policy, PolicyRuntime) else PolicyRuntime(policy)
        self.core = ControlCore(self.policy, controller)
        conv = convention(c.convention)
        self.scene = scene or conv.apply(build_scene(c.terrain, c.contact, c.timestep))
        if not math.isclose(self.scene.model.opt.timestep, c.timestep, rel_tol=1e-12):
            raise ValueError(
                f"scene timestep {self.scene.model.opt.timestep} != config timestep {c.timestep}"
            )
        self.robot = SimRobot(self.scene, conv.pd_delay_steps)
        spawn = c.spawn if isinstance(c.spawn, str) else tuple(c.spawn)
        self.robot.reset(spawn, c.joint_noise, np.random.default_rng(c.seed))
        ratio = self.core.control_dt / c.timestep
        self.substeps = round(ratio)
        if self.substeps < 1 or abs(ratio - self.substeps) > 1e-9:
            raise ValueError(
                f"the control period {self.core.control_dt} s is not a whole number of physics "
                f"steps of {c.timestep} s"
            )
        self.script = sorted(script, key=lambda e: e.t)
        self.pushes = list(pushes)
        self._next_event = 0
        self._operator: OperatorCommand | None = None
        self._pending_request = int(Request.NONE)
        self._push_on: tuple[float, ...] | None = None
        self._rows: dict[str, list] = {n: [] for n in (*_FIELDS_1D, *_FIELDS_2D)}
        self._faults: list[tuple[str, ...]] = []
        self._events: list[tuple[float, str]] = []
        self.last_result: StepResult | None = None

    @property
    def time(self) -> float:
        """Sim time [s], the core's clock: physics steps x timestep (MuJoCo's ``data.time`` sums
        the steps and drifts by ~1e-14; this grid does not)."""
        return self.robot.steps * self.config.timestep

    # ------------------------------------------------------------------ the loop
    def operator_command(self, now: float) -> OperatorCommand | None:
        """The operator's command for the control step at ``now``: the script's (a subclass may
        override this for a closed-loop operator, e.g. the benchmark's heading keeper)."""
        while self._next_event < len(self.script) and self.script[self._next_event].t <= now + 1e-9:
            cmd = self.script[self._next_event].command
            self._operator = cmd
            if cmd is not None and cmd.request:
                self._pending_request = int(cmd.request)
            self._next_event += 1
        if self._operator is None:
            return None
        out = dataclasses.replace(self._operator, request=self._pending_request, stamp=now)
        self._pending_request = int(Request.NONE)
        return out

    def _apply_pushes(self, now: float) -> None:
        force, torque = np.zeros(3), np.zeros(3)
        for p in self.pushes:
            if p.active(now):
                force += p.force
                torque += p.torque
        wrench = (*force.tolist(), *torque.tolist())
        if wrench != self._push_on:
            self.robot.push(wrench[:3], wrench[3:])
            self._push_on = wrench

    def control_step(self) -> StepResult:
        """One control step at the current instant (the physics step must have begun)."""
        now = self.time
        state = robot_state_from_frame(self.robot.frame(), stamp=now)
        result = self.core.step(state, self.operator_command(now), now)
        self.last_result = result
        self._record(now, result)
        return result

    def run(self, duration: float) -> LockstepTrace:
        """Advance ``duration`` seconds of sim time; return the whole trace so far."""
        self.advance(duration)
        return self.trace

    def advance(self, duration: float) -> None:
        """Advance ``duration`` seconds of sim time (:meth:`run` without building the trace, for
        callers that step a control period at a time)."""
        n = round(duration / self.config.timestep)
        robot = self.robot
        for _ in range(n):
            robot.begin_step()
            command = None
            if robot.steps % self.substeps == 0:
                command = self.control_step().command
            if self.pushes:
                self._apply_pushes(self.time)
            robot.end_step(command)

    # ------------------------------------------------------------------ recording
    def _record(self, now: float, result: StepResult) -> None:
        r, s, cmd, robot = self._rows, result.status, result.command, self.robot
        pos = robot.base_pos()
        r["t"].append(now)
        r["mode"].append(int(s.mode))
        r["gait"].append(int(s.gait))
        r["base_height"].append(float(pos[2]))
        r["stand_progress"].append(float(s.stand_progress))
        r["command"].append(np.array(s.command, dtype=np.float64))
        r["base_pos"].append(pos)
        r["base_quat"].append(robot.base_quat())
        r["base_lin_vel"].append(robot.base_lin_vel_body())
        r["base_lin_vel_world"].append(robot.base_lin_vel_world())
        r["base_ang_vel"].append(robot.base_ang_vel_body())
        r["estimated_lin_vel"].append(np.array(s.estimated_lin_vel, dtype=np.float64))
        r["joint_pos"].append(robot.joint_pos())
        r["joint_torque"].append(robot.tau.copy())
        r["joint_target"].append(np.array(cmd.q, dtype=np.float64))
        r["kp"].append(np.array(cmd.kp, dtype=np.float64))
        r["kd"].append(np.array(cmd.kd, dtype=np.float64))
        r["gate"].append(np.array(s.gate, dtype=np.float64))
        r["expert_scale"].append(np.array(s.expert_scale, dtype=np.float64))
        self._faults.append(tuple(s.faults))
        self._events.extend((now, e) for e in result.events)

    @property
    def trace(self) -> LockstepTrace:
        """The recorded control steps as arrays."""
        r = self._rows
        width = {"command": 3, "base_pos": 3, "base_quat": 4, "base_lin_vel": 3}
        width |= {"base_lin_vel_world": 3, "base_ang_vel": 3, "estimated_lin_vel": 3}
        width |= {"joint_pos": 12, "joint_torque": 12, "joint_target": 12, "kp": 12, "kd": 12}
        width |= {"gate": self.policy.num_experts, "expert_scale": self.policy.num_experts}
        cols: dict[str, np.ndarray] = {}
        for name in _FIELDS_1D:
            dtype = np.int64 if name in ("mode", "gait") else np.float64
            cols[name] = np.array(r[name], dtype=dtype)
        for name in _FIELDS_2D:
            cols[name] = (
                np.array(r[name], dtype=np.float64).reshape(-1, width[name])
                if r[name]
                else np.zeros((0, width[name]))
            )
        return LockstepTrace(**cols, faults=list(self._faults), events=list(self._events))


def max_pose_error(
    trace: LockstepTrace, pose: np.ndarray | None = None, last_s: float = 0.5
) -> float:
    """Largest |joint - pose| [rad] over the last ``last_s`` seconds of ``trace`` (default pose:
    the Go2 fallback; pass the policy's ``action_map.default_pose_sdk``)."""
    pose = go2.DEFAULT_STANDING_POSE if pose is None else pose
    sel = trace.t >= trace.t[-1] - last_s
    return float(np.max(np.abs(trace.joint_pos[sel] - pose)))
