"""The control core. One call, one step: (robot state, command, time) -> joint command + status.

Modes (numbers as in ``moe_loco_msgs/ControllerStatus``):

- PASSIVE: zero torque. Faults are reported but not latched (a robot lying still without state is
  not an emergency); leaving PASSIVE is refused while any fault is present.
- STAND: timed interpolation from the pose measured on entry to the policy's default pose, with the
  stand gains; RUN is accepted once the interpolation has finished.
- RUN: the policy. PD target = default + action_scale * clip(action), Kp/Kd from the metadata,
  mapped to SDK order by joint name.
- DAMP: kp 0, small kd, from any mode on e-stop, an operator request or a fault; latched until a
  RESET request finds no fault left (then PASSIVE).

Recurrent state: it is reset (and the last action zeroed) on every entry into RUN, because the
policy was trained from episode starts at its default pose with a zero state, which is where STAND
leaves the robot. A gait switch does NOT reset it: training switches gaits inside episodes, and the
memory of the current motion is what lets the policy stand up or drop down smoothly.

Velocity commands are limited to the policy's ranges for the active gait, and zeroed while the
deadman is released or the operator command is older than ``command_timeout_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from moe_loco_controller.core import go2
from moe_loco_controller.core.command_guard import clamp_targets, command_problems
from moe_loco_controller.core.observation import ObservationBuilder, clip_command
from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_controller.core.robot_state import JointCommand, RobotState
from moe_loco_controller.core.safety import Fault, SafetyLimits, TickMonitor, state_faults


class Mode(IntEnum):
    PASSIVE = 0
    STAND = 1
    RUN = 2
    DAMP = 3


class Request(IntEnum):
    NONE = 0
    STAND = 1
    RUN = 2
    PASSIVE = 3
    DAMP = 4
    RESET = 5


_REQUESTS = frozenset(int(r) for r in Request)


@dataclass(frozen=True)
class OperatorCommand:
    """What the operator asks for (the core's view of ``moe_loco_msgs/LocoCommand``)."""

    vx: float = 0.0
    vy: float = 0.0
    wz: float = 0.0
    gait: int = 0
    request: int = Request.NONE
    estop: bool = False
    deadman: bool = False
    stamp: float = 0.0
    """When it was received, on the controller's clock [s]."""


@dataclass(frozen=True)
class ControllerConfig:
    """Parameters of the control core (``control`` section of the controller YAML)."""

    stand_duration_s: float = 2.0
    stand_kp: float | None = None
    """Gains while standing up; None: the policy's own."""
    stand_kd: float | None = None
    stand_integral_gain: float = 0.0
    """[1/s] Integral action on the joint error while standing (0: off): the target moves by
    ``gain * dt * (reference - measured)`` each step, so the pose error decays to zero at moderate
    gains instead of staying at load torque / Kp."""
    stand_integral_limit: float = 0.2
    """[rad] Bound of that target offset per joint (no wind-up with a blocked or lifted leg)."""
    damp_kd: float = 2.0
    command_timeout_s: float = 0.5
    """An operator command older than this gives zero velocity."""
    command_lost_damp_s: float = 2.0
    """An operator command older than this, in STAND or RUN, damps (0 disables)."""
    safety: SafetyLimits = field(default_factory=SafetyLimits)

    def __post_init__(self) -> None:
        for name in ("stand_duration_s", "damp_kd", "command_timeout_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"control.{name} must be a finite number > 0, got {v!r}")
        for name in ("stand_kp", "stand_kd"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"control.{name} must be null or a finite number >= 0, got {v!r}")
        for name, top in (
            ("stand_kp", go2.KP_MAX),
            ("stand_kd", go2.KD_MAX),
            ("damp_kd", go2.KD_MAX),
        ):
            v = getattr(self, name)
            if v is not None and v > top:
                raise ValueError(
                    f"control.{name} must be <= {top:g} (the command limit), got {v!r}"
                )
        for name in ("command_lost_damp_s", "stand_integral_gain", "stand_integral_limit"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"control.{name} must be a finite number >= 0, got {v!r}")


@dataclass(frozen=True)
class CoreStatus:
    """What one step reports (the core's view of ``moe_loco_msgs/ControllerStatus``)."""

    mode: Mode
    gait: int
    step: int
    command: np.ndarray
    """(vx, vy, wz) applied this step, after limits."""
    gate: np.ndarray
    expert_scale: np.ndarray
    estimated_lin_vel: np.ndarray
    faults: tuple[str, ...]
    """Latched faults (DAMP) or, outside DAMP, the faults present this step."""
    fault_details: tuple[str, ...]
    state_age_s: float
    stand_progress: float

    @property
    def mode_name(self) -> str:
        return self.mode.name


@dataclass(frozen=True)
class StepResult:
    command: JointCommand
    """PD targets for the motors, SDK order."""
    status: CoreStatus
    events: tuple[str, ...]
    """Mode transitions and refused requests of this step, one human-readable line each."""


class ControlCore:
    """The controller's modes, safety latch and policy loop. Deterministic: no clock of its own."""

    def __init__(self, policy: PolicyRuntime, config: ControllerConfig | None = None) -> None:
        self.policy = policy
        self.config = config or ControllerConfig()
        self.metadata = meta = policy.metadata
        self.obs = ObservationBuilder(meta)
        self.action_map = policy.action_map
        self.control_dt = meta.control_dt
        self.mode = Mode.PASSIVE
        self.gait = 0
        self._operator_gait = 0
        self.step_count = 0
        self.latched: dict[str, str] = {}
        self._last_action = np.zeros(meta.num_joints)
        self._previous_gait: int | None = None
        self._gait_switched_at = -math.inf
        self._stand_from: np.ndarray | None = None
        self._stand_t0 = 0.0
        self._stand_offset = np.zeros(12)
        self._gate = np.zeros(meta.num_experts)
        self._estimate_vel = np.zeros(3)
        self._default_sdk = self.action_map.default_pose_sdk
        kp, kd = self.action_map.kp_sdk, self.action_map.kd_sdk
        c = self.config
        self._stand_kp = kp if c.stand_kp is None else np.full(12, float(c.stand_kp))
        self._stand_kd = kd if c.stand_kd is None else np.full(12, float(c.stand_kd))
        self._run_kp, self._run_kd = kp, kd
        self._proprio = np.zeros(self.obs.proprio_dim, dtype=np.float32)
        self._command_vec = np.zeros(self.obs.command_dim, dtype=np.float32)
        self._ticks = TickMonitor()

    # ------------------------------------------------------------------ helpers
    def _gait_name(self, gait: int) -> str:
        return self.metadata.gaits[gait]

    def set_gait(self, gait: int, now: float) -> None:
        """Switch the gait given to the policy (validated against the policy's gaits)."""
        gait = self.metadata.gait_index(int(gait))
        if gait != self.gait:
            self._previous_gait = self.gait
            self._gait_switched_at = now
            self.gait = gait

    def _enter(self, mode: Mode, now: float, state: RobotState | None, events: list[str]) -> None:
        if mode == self.mode:
            return
        events.append(f"{self.mode.name} -> {mode.name}")
        if mode == Mode.STAND:
            assert state is not None
            self._stand_from = np.array(state.q, dtype=np.float64)
            self._stand_t0 = now
            self._stand_offset[:] = 0.0
        if mode == Mode.RUN:
            self.policy.reset()
            self._last_action[:] = 0.0
        self.mode = mode

    def _latch(
        self, faults: list[tuple[str, str]], now: float, state: RobotState | None, events: list[str]
    ) -> None:
        for f, detail in faults:
            if f not in self.latched:
                self.latched[f] = detail
                events.append(f"fault {f}: {detail}")
        self._enter(Mode.DAMP, now, state, events)

    def stand_progress(self, now: float) -> float:
        if self.mode != Mode.STAND:
            return 1.0 if self.mode == Mode.RUN else 0.0
        return min(1.0, max(0.0, (now - self._stand_t0) / self.config.stand_duration_s))

    # ------------------------------------------------------------------ the step
    def step(
        self,
        state: RobotState | None,
        command: OperatorCommand | None,
        now: float,
        external_faults: tuple[tuple[str, str], ...] = (),
    ) -> StepResult:
        """One control step at time ``now`` (seconds, same clock as the stamps).

        Never raises: an exception inside the step latches DAMP with the ``control_error``
        fault, whose detail names the exception, and the step returns damping.
        """
        events: list[str] = []
        try:
            return self._step(state, command, now, external_faults, events)
        except Exception as e:
            return self._failed_step(e, state, now, events)

    def _failed_step(
        self, error: Exception, state: RobotState | None, now: float, events: list[str]
    ) -> StepResult:
        detail = f"{type(error).__name__} in the control step: {str(error)[:300]}"
        self.latched.setdefault(Fault.CONTROL_ERROR, detail)
        events.append(f"fault {Fault.CONTROL_ERROR}: {detail}")
        if self.mode != Mode.DAMP:
            events.append(f"{self.mode.name} -> DAMP")
            self.mode = Mode.DAMP
        self.step_count += 1
        try:
            age = math.inf if state is None else float(now - state.stamp)
        except Exception:  # a state so broken it has no usable stamp
            age = math.inf
        status = CoreStatus(
            mode=self.mode,
            gait=self.gait,
            step=self.step_count,
            command=np.zeros(3),
            gate=self._gate.copy(),
            expert_scale=self.policy.expert_scale,
            estimated_lin_vel=self._estimate_vel.copy(),
            faults=tuple(self.latched),
            fault_details=tuple(self.latched.values()),
            state_age_s=age,
            stand_progress=0.0,
        )
        return StepResult(JointCommand.damping(self.config.damp_kd), status, tuple(events))

    def _step(
        self,
        state: RobotState | None,
        command: OperatorCommand | None,
        now: float,
        external_faults: tuple[tuple[str, str], ...],
        events: list[str],
    ) -> StepResult:
        c = self.config
        cmd = command or OperatorCommand(stamp=-math.inf)
        cmd_age = now - cmd.stamp

        # operator input: a gait *change* in the command stream switches (so a gait set through
        # set_gait(), e.g. by a service, holds until the operator's gait changes)
        if cmd.gait != self._operator_gait:
            self._operator_gait = cmd.gait
            try:
                self.set_gait(cmd.gait, now)
            except ValueError as e:
                events.append(f"gait request refused: {e}")
        if cmd.request not in _REQUESTS:
            events.append(
                f"request {cmd.request!r} refused: unknown (known: "
                + ", ".join(f"{int(r)} {r.name}" for r in Request)
                + ")"
            )
        operator: list[tuple[str, str]] = []
        if cmd.estop:
            operator.append((Fault.ESTOP, "e-stop pressed"))
        if cmd.request == Request.DAMP:
            operator.append((Fault.OPERATOR_DAMP, "operator asked for DAMP"))

        # faults present this step
        in_transition = now - self._gait_switched_at < c.safety.gait_transition_s
        faults = state_faults(
            state,
            now,
            self.control_dt,
            self._gait_name(self.gait),
            c.safety,
            previous_gait=(
                self._gait_name(self._previous_gait)
                if in_transition and self._previous_gait is not None
                else None
            ),
            check_tilt=self.mode in (Mode.STAND, Mode.RUN),
        )
        faults += self._ticks.faults(state, now, c.safety.stale_state_periods * self.control_dt)
        faults += list(external_faults)
        if (
            self.mode in (Mode.STAND, Mode.RUN)
            and c.command_lost_damp_s > 0
            and cmd_age > c.command_lost_damp_s
        ):
            faults.append((Fault.JOYSTICK_LOST, f"no operator command for {cmd_age:.2f} s"))
        present = operator + faults

        # the latch and the mode requests
        if self.mode == Mode.DAMP:
            self.latched.update({f: d for f, d in operator if f not in self.latched})
            if cmd.request == Request.RESET:
                if present:
                    events.append("reset refused: " + "; ".join(f"{f} ({d})" for f, d in present))
                else:
                    self.latched.clear()
                    self._enter(Mode.PASSIVE, now, state, events)
        elif operator or (faults and self.mode in (Mode.STAND, Mode.RUN)):
            self._latch(present, now, state, events)
        elif cmd.request == Request.STAND and self.mode == Mode.PASSIVE:
            if faults:
                events.append("stand refused: " + "; ".join(f"{f} ({d})" for f, d in faults))
            else:
                self._enter(Mode.STAND, now, state, events)
        elif cmd.request == Request.RUN and self.mode == Mode.STAND:
            if self.stand_progress(now) < 1.0:
                events.append("run refused: still standing up")
            else:
                self._enter(Mode.RUN, now, state, events)
        elif cmd.request == Request.PASSIVE and self.mode in (Mode.STAND, Mode.RUN):
            self._enter(Mode.PASSIVE, now, state, events)

        # velocity command
        velocity = np.zeros(3)
        if cmd.deadman and cmd_age <= c.command_timeout_s:
            bad = [ax for ax, v in zip(("vx", "vy", "wz"), (cmd.vx, cmd.vy, cmd.wz), strict=True)
                   if not (isinstance(v, int | float) and math.isfinite(v))]  # fmt: skip
            if bad:
                events.append(f"velocity command refused: {', '.join(bad)} not finite (zero used)")
            else:
                velocity[:] = clip_command(self.metadata, cmd.vx, cmd.vy, cmd.wz, self.gait)

        # output
        joint_cmd = self._output(state, velocity, now, events)
        self.step_count += 1
        status = CoreStatus(
            mode=self.mode,
            gait=self.gait,
            step=self.step_count,
            command=velocity,
            gate=self._gate.copy(),
            expert_scale=self.policy.expert_scale,
            estimated_lin_vel=self._estimate_vel.copy(),
            faults=tuple(self.latched) if self.mode == Mode.DAMP else tuple(f for f, _ in present),
            fault_details=tuple(self.latched.values())
            if self.mode == Mode.DAMP
            else tuple(d for _, d in present),
            state_age_s=math.inf if state is None else now - state.stamp,
            stand_progress=self.stand_progress(now),
        )
        return StepResult(joint_cmd, status, tuple(events))

    def _output(
        self, state: RobotState | None, velocity: np.ndarray, now: float, events: list[str]
    ) -> JointCommand:
        zeros = np.zeros(12)
        if self.mode == Mode.STAND:
            assert self._stand_from is not None
            a = self.stand_progress(now)
            reference = (1.0 - a) * self._stand_from + a * self._default_sdk
            c = self.config
            if c.stand_integral_gain > 0 and state is not None:
                error = reference - np.asarray(state.q, dtype=np.float64)
                self._stand_offset = np.clip(
                    self._stand_offset + c.stand_integral_gain * self.control_dt * error,
                    -c.stand_integral_limit,
                    c.stand_integral_limit,
                )
            q = clamp_targets(reference + self._stand_offset)
            out = JointCommand(q, zeros, self._stand_kp.copy(), self._stand_kd.copy(), zeros)
        elif self.mode == Mode.RUN:
            assert state is not None
            self.obs.proprio(state, self._last_action, out=self._proprio)
            self.obs.command(*velocity, self.gait, out=self._command_vec)
            result = self.policy.step(self._proprio, self._command_vec)
            if not result.finite():
                self._latch(
                    [(Fault.NON_FINITE_POLICY, "policy output is not finite")], now, state, events
                )
                return JointCommand.damping(self.config.damp_kd)
            self._gate = np.asarray(result.gate, dtype=np.float64)
            self._estimate_vel = np.asarray(self.policy.base_velocity(result), dtype=np.float64)
            clipped = self.action_map.clip(np.asarray(result.actions, dtype=np.float64))
            self._last_action = clipped
            q = clamp_targets(self.action_map.pd_targets_sdk(clipped))
            out = JointCommand(q, zeros, self._run_kp.copy(), self._run_kd.copy(), zeros)
        elif self.mode == Mode.DAMP:
            return JointCommand.damping(self.config.damp_kd)
        else:
            return JointCommand.zero_torque()
        problems = command_problems(out)  # the same check the wire applies
        if problems:
            self._latch([(Fault.BAD_COMMAND, "; ".join(problems))], now, state, events)
            return JointCommand.damping(self.config.damp_kd)
        return out
