"""Fault detection of the safety supervisor: pure functions of the robot state and the clock.

The controller latches any fault into DAMP (kp 0, small kd) until an explicit reset. This module
only *detects*; :mod:`moe_loco_controller.core.controller` owns the latch and the modes.

Tilt is measured from the projected gravity g (world (0, 0, -1) in the base frame):

- quadrupedal (the paper's termination, Section III-B): roll > 1.0 rad or pitch > 1.6 rad, with
  roll = atan2(-g_y, -g_z) and pitch = atan2(g_x, -g_z) over the full circle (equal to the Euler
  angles for small tilts; unlike ZYX Euler pitch, which never exceeds pi/2, these reach pi, so
  "pitch > 1.6" means "nose past vertical" and can fire).
- bipedal: the paper's rule (any link but the rear feet and calves touching the ground after 1 s)
  needs contact sensing the robot lacks, so we use its orientation equivalent. Standing on the rear
  legs the nose points up (g = (-1, 0, 0)); lying on four legs is where a stand-up starts. Fault
  when the robot falls sideways (|asin g_y| > 1.0 rad, the quadrupedal roll limit), faces down
  (nose more than 0.5 rad below horizontal: g_x > sin 0.5) or falls onto its back (more than
  0.8 rad past vertical: g_z > sin 0.8). Every orientation a stand-up or drop-down passes through
  (g from (0, 0, -1) to (-1, 0, 0)) is inside these limits.
- during ``gait_transition_s`` after a gait switch, a tilt counts only if it is outside the limits
  of both gaits (the robot is between postures).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from moe_loco_controller.core.observation import projected_gravity
from moe_loco_controller.core.robot_state import RobotState, check_robot_state


class Fault:
    """Fault names as they appear in the status ``faults`` list."""

    ESTOP = "estop"
    NO_STATE = "no_state"
    STALE_STATE = "stale_state"
    BAD_STATE = "bad_state"  # non-finite or implausible values in the robot state
    JOINT_RANGE = "joint_range"
    TILT = "tilt"
    NON_FINITE_POLICY = "non_finite_policy"
    OTHER_LOWCMD_PUBLISHER = "other_lowcmd_publisher"
    SPORT_MODE_ACTIVE = "sport_mode_active"
    OPERATOR_DAMP = "operator_damp"
    JOYSTICK_LOST = "joystick_lost"
    CONTROL_ERROR = "control_error"  # an exception inside a control step (the detail names it)
    BAD_COMMAND = "bad_command"  # a joint command the command check refused
    CONTROL_STALLED = "control_stalled"  # the LowCmd_ stream saw no fresh step in time
    LOWCMD_STREAM = "lowcmd_stream"  # the LowCmd_ stream failed to send
    FROZEN_STATE = "frozen_state"  # the robot's tick stopped advancing (a repeated frame)
    TICK_BACKWARDS = "tick_backwards"  # the robot's tick went back


@dataclass(frozen=True)
class SafetyLimits:
    """Limits of the supervisor (from the controller YAML; defaults are the documented ones)."""

    stale_state_periods: float = 3.0
    """Robot state older than this many control periods is stale."""
    quad_roll: float = 1.0
    quad_pitch: float = 1.6
    biped_side: float = 1.0
    biped_nose_down: float = 0.5
    biped_back: float = 0.8
    gait_transition_s: float = 2.0
    joint_margin: float = 0.2
    """[rad] beyond a joint's range before it is a fault (encoders and soft stops overshoot)."""
    velocity_factor: float = 1.5
    """Joint speed beyond this times the URDF limit is implausible."""

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"safety.{name} must be a finite number > 0, got {value!r}")


def tilt_angles(g: np.ndarray) -> tuple[float, float]:
    """(roll, pitch) [rad] from projected gravity, each in (-pi, pi]."""
    return math.atan2(-g[1], -g[2]), math.atan2(g[0], -g[2])


def quad_tilt_exceeded(g: np.ndarray, lim: SafetyLimits) -> bool:
    roll, pitch = tilt_angles(g)
    return abs(roll) > lim.quad_roll or abs(pitch) > lim.quad_pitch


def biped_tilt_exceeded(g: np.ndarray, lim: SafetyLimits) -> bool:
    side = math.asin(min(1.0, abs(float(g[1]))))
    return (
        side > lim.biped_side
        or g[0] > math.sin(lim.biped_nose_down)
        or g[2] > math.sin(lim.biped_back)
    )


_TILT_CHECKS = {"quadrupedal": quad_tilt_exceeded, "bipedal": biped_tilt_exceeded}
GAITS_WITH_TILT_LIMITS = tuple(_TILT_CHECKS)
"""The gaits the supervisor has tilt limits for: a policy with any other gait is refused."""


def tilt_exceeded(
    g: np.ndarray, gait: str, lim: SafetyLimits, previous_gait: str | None = None
) -> bool:
    """Whether the tilt is past the limits of ``gait`` (and of ``previous_gait`` if given)."""
    checks = _TILT_CHECKS
    if gait not in checks:
        raise ValueError(f"no tilt limits for gait {gait!r}; known: {sorted(checks)}")
    exceeded = checks[gait](g, lim)
    if exceeded and previous_gait is not None and previous_gait != gait:
        exceeded = checks[previous_gait](g, lim)
    return exceeded


def state_faults(
    state: RobotState | None,
    now: float,
    control_dt: float,
    gait: str,
    lim: SafetyLimits,
    previous_gait: str | None = None,
    check_tilt: bool = True,
) -> list[tuple[str, str]]:
    """Faults of one robot-state frame at time ``now``: [(fault, detail)], empty when sane."""
    if state is None:
        return [(Fault.NO_STATE, "no robot state received")]
    out: list[tuple[str, str]] = []
    age = now - state.stamp
    if age > lim.stale_state_periods * control_dt:
        out.append((Fault.STALE_STATE, f"robot state is {age * 1e3:.1f} ms old"))
    # the supervisor's own limits, not whatever the wire layer flagged with its defaults
    problems = check_robot_state(
        state, joint_margin=lim.joint_margin, velocity_factor=lim.velocity_factor
    )
    for p in problems:
        kind = Fault.JOINT_RANGE if p.startswith("q out of range") else Fault.BAD_STATE
        out.append((kind, p))
    if check_tilt and not any(f == Fault.BAD_STATE for f, _ in out):
        g = projected_gravity(state.quat_wxyz)
        if tilt_exceeded(g, gait, lim, previous_gait):
            roll, pitch = tilt_angles(g)
            out.append((Fault.TILT, f"tilt past {gait} limits: roll {roll:.2f} pitch {pitch:.2f}"))
    return out


class TickMonitor:
    """The robot's millisecond tick across control steps: a frame repeated or a clock gone back.

    Fresh arrivals of a frame whose tick does not advance (a peer or bridge repeating one frame)
    are not a live robot: ``frozen_state`` once the tick has stood still for longer than the
    stale limit while frames kept arriving. A tick lower than the last one (modulo 2**32, the
    counter's width) is ``tick_backwards``.
    """

    def __init__(self) -> None:
        self._tick: int | None = None
        self._since = 0.0

    def faults(self, state: RobotState | None, now: float, limit_s: float) -> list[tuple[str, str]]:
        if state is None:
            return []
        tick = int(state.tick) & 0xFFFFFFFF
        if self._tick is None:
            self._tick, self._since = tick, state.stamp
            return []
        out: list[tuple[str, str]] = []
        if tick != self._tick:
            back = (self._tick - tick) & 0xFFFFFFFF
            if back < 1 << 31:
                out.append(
                    (Fault.TICK_BACKWARDS, f"robot tick went back from {self._tick} to {tick}")
                )
            self._tick, self._since = tick, state.stamp
        elif state.stamp > self._since and now - self._since > limit_s:
            out.append(
                (
                    Fault.FROZEN_STATE,
                    f"robot tick {tick} unchanged for {(now - self._since) * 1e3:.1f} ms "
                    "of arriving frames",
                )
            )
        return out
