"""Plain robot-state and joint-command types of the core, and the checks on a robot state.

These are what the wire layer converts LowState_/LowCmd_ to and from, what the sim produces and
what bags record. Joint arrays are in SDK order (:data:`moe_loco_controller.core.go2.JOINT_NAMES`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from moe_loco_controller.core import go2


@dataclass(frozen=True)
class RobotState:
    """One low-level state frame of the robot, SDK joint order, SI units."""

    q: np.ndarray
    """Joint positions [rad], shape (12,)."""
    dq: np.ndarray
    """Joint velocities [rad/s], shape (12,)."""
    tau_est: np.ndarray
    """Estimated joint torques [N m], shape (12,)."""
    quat_wxyz: np.ndarray
    """Base orientation quaternion, w first, shape (4,)."""
    gyro: np.ndarray
    """Base angular velocity in the base frame [rad/s], shape (3,)."""
    accel: np.ndarray
    """Specific force in the base frame [m/s^2], shape (3,)."""
    foot_force: np.ndarray = field(default_factory=lambda: np.zeros(4, dtype=np.int16))
    """Raw foot contact sensor values, FR, FL, RR, RL."""
    tick: int = 0
    """The robot's millisecond tick."""
    remote_keys: int = 0
    """Go2 remote key bits (see :data:`go2.REMOTE_KEYS`)."""
    remote_axes: np.ndarray = field(default_factory=lambda: np.zeros(5))
    """Go2 remote sticks: lx, ly, rx, ry, L2."""
    stamp: float = 0.0
    """When the frame arrived, on the controller's monotonic clock [s], less any delivery delay
    the link measured (the wire layer stamps it in the DDS listener, not when it is read)."""
    crc_ok: bool = True
    """False if the frame failed its CRC check (it must not be used to control)."""
    problems: tuple[str, ...] = ()
    """What :func:`check_robot_state` found wrong with this frame; empty when it is sane."""

    @staticmethod
    def nominal(
        stamp: float = 0.0, q: np.ndarray | None = None, tick: int | None = None
    ) -> RobotState:
        """A sane state: upright, still, joints at ``q`` (default standing pose); the robot's
        tick is the stamp in ms unless given."""
        return RobotState(
            tick=round(stamp * 1000) & 0xFFFFFFFF if tick is None else tick,
            q=np.array(go2.DEFAULT_STANDING_POSE if q is None else q, dtype=np.float64),
            dq=np.zeros(12),
            tau_est=np.zeros(12),
            quat_wxyz=np.array([1.0, 0.0, 0.0, 0.0]),
            gyro=np.zeros(3),
            accel=np.array([0.0, 0.0, 9.81]),
            stamp=stamp,
        )


@dataclass(frozen=True)
class JointCommand:
    """PD targets for the 12 motors, SDK order: tau = kp (q - q_m) + kd (dq - dq_m) + tau."""

    q: np.ndarray
    dq: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    tau: np.ndarray

    @staticmethod
    def zero_torque() -> JointCommand:
        """No torque at all (PASSIVE): stop values for the targets, zero gains."""
        return JointCommand(
            q=np.full(12, go2.POS_STOP_F),
            dq=np.full(12, go2.VEL_STOP_F),
            kp=np.zeros(12),
            kd=np.zeros(12),
            tau=np.zeros(12),
        )

    @staticmethod
    def damping(kd: float) -> JointCommand:
        """Pure damping (DAMP): kp 0, velocity target 0, gain ``kd`` on every motor."""
        return JointCommand(
            q=np.zeros(12), dq=np.zeros(12), kp=np.zeros(12), kd=np.full(12, kd), tau=np.zeros(12)
        )

    def is_finite(self) -> bool:
        return all(np.all(np.isfinite(a)) for a in (self.q, self.dq, self.kp, self.kd, self.tau))


def check_robot_state(
    state: RobotState,
    joint_margin: float = 0.1,
    velocity_factor: float = 1.5,
    quat_norm_tolerance: float = 0.1,
) -> tuple[str, ...]:
    """What is wrong with a state frame: non-finite values, joints beyond range, and so on.

    ``joint_margin`` [rad] is allowed past each joint's range (encoders and soft stops overshoot);
    joint speeds beyond ``velocity_factor`` times the URDF limit are implausible. The returned
    strings name the field and the joint, e.g. ``"q not finite: FL_hip_joint"``.
    """
    problems: list[str] = []
    names = go2.JOINT_NAMES
    for label in ("q", "dq", "tau_est"):
        a = np.asarray(getattr(state, label), dtype=np.float64)
        if a.shape != (12,):
            problems.append(f"{label} has shape {a.shape}, expected (12,)")
            continue
        bad = ~np.isfinite(a)
        if bad.any():
            problems.append(
                f"{label} not finite: {', '.join(names[i] for i in np.flatnonzero(bad))}"
            )
    for label, n in (("quat_wxyz", 4), ("gyro", 3), ("accel", 3), ("remote_axes", 5)):
        a = np.asarray(getattr(state, label), dtype=np.float64)
        if a.shape != (n,):
            problems.append(f"{label} has shape {a.shape}, expected ({n},)")
        elif not np.all(np.isfinite(a)):
            problems.append(f"{label} not finite")
    q = np.asarray(state.q, dtype=np.float64)
    if q.shape == (12,):
        with np.errstate(invalid="ignore"):
            out = (q < go2.JOINT_LOWER - joint_margin) | (q > go2.JOINT_UPPER + joint_margin)
        if out.any():
            problems.append(
                "q out of range: "
                + ", ".join(f"{names[i]}={q[i]:.3f}" for i in np.flatnonzero(out))
            )
    dq = np.asarray(state.dq, dtype=np.float64)
    if dq.shape == (12,):
        with np.errstate(invalid="ignore"):
            fast = np.abs(dq) > velocity_factor * go2.VELOCITY_LIMIT
        if fast.any():
            problems.append(
                "dq beyond limit: "
                + ", ".join(f"{names[i]}={dq[i]:.1f}" for i in np.flatnonzero(fast))
            )
    quat = np.asarray(state.quat_wxyz, dtype=np.float64)
    if quat.shape == (4,) and np.all(np.isfinite(quat)):
        norm = float(np.linalg.norm(quat))
        if abs(norm - 1.0) > quat_norm_tolerance:
            problems.append(f"quat_wxyz not unit: norm {norm:.3f}")
    if not state.crc_ok:
        problems.append("bad crc")
    return tuple(problems)
