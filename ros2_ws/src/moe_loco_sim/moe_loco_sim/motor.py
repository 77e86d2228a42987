"""The Go2's motor law, as the simulated robot applies it to each joint from the latest command.

Per motor (SDK order): ``tau = kp (q_t - q) + kd (dq_t - dq) + tau_ff``, clipped to the motor's
torque limit. Unitree's stop values switch a loop off: a position target at PosStopF (2.146e9)
drops the ``kp`` term, a velocity target at VelStopF (16000) drops the ``kd`` term, so an idle
motor (stop values, kp = kd = tau = 0) gives zero torque. A motor whose mode is not servo (0x01)
gives zero torque too. Commands are :class:`~moe_loco_controller.core.robot_state.JointCommand`,
the controller core's own type; :func:`command_from_lowcmd_values` reads one off the wire.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from moe_loco_controller.core import go2
from moe_loco_controller.core.robot_state import JointCommand
from moe_loco_controller.io import cdr

POS_STOP_THRESHOLD = 0.99 * go2.POS_STOP_F
"""|q target| at or above this is PosStopF: no position loop (float32 on the wire rounds it)."""
VEL_STOP_THRESHOLD = 0.99 * go2.VEL_STOP_F
"""|dq target| at or above this is VelStopF: no velocity loop."""


class MotorLaw:
    """One command prepared for evaluation at every physics step (the stop values resolved)."""

    __slots__ = ("command", "dq", "hi", "kd", "kp", "lo", "q", "tau")

    def __init__(self, command: JointCommand, torque_limit: np.ndarray) -> None:
        self.command = command
        pos_on = np.abs(command.q) < POS_STOP_THRESHOLD
        vel_on = np.abs(command.dq) < VEL_STOP_THRESHOLD
        self.kp = np.where(pos_on, command.kp, 0.0).astype(np.float64)
        self.q = np.where(pos_on, command.q, 0.0).astype(np.float64)
        self.kd = np.where(vel_on, command.kd, 0.0).astype(np.float64)
        self.dq = np.where(vel_on, command.dq, 0.0).astype(np.float64)
        self.tau = np.asarray(command.tau, dtype=np.float64).copy()
        self.hi = np.asarray(torque_limit, dtype=np.float64).copy()
        self.lo = -self.hi

    def torque(self, q: np.ndarray, dq: np.ndarray) -> np.ndarray:
        """Motor torques [N m] at joint state ``q``, ``dq`` (SDK order), clipped to the limits."""
        t = self.tau + self.kp * (self.q - q) + self.kd * (self.dq - dq)
        np.minimum(t, self.hi, out=t)
        np.maximum(t, self.lo, out=t)
        return t


def pd_torque(
    command: JointCommand, q: np.ndarray, dq: np.ndarray, torque_limit: np.ndarray
) -> np.ndarray:
    """Joint torques [N m] of the 12 motors (SDK order) for ``command`` at state ``q``, ``dq``."""
    return MotorLaw(command, torque_limit).torque(q, dq)


_MOTOR_FIELDS = [cdr.LC_MOTOR0 + i * cdr.LC_MOTOR_LEN for i in range(go2.NUM_MOTORS)]


def command_from_lowcmd_values(values: Sequence) -> JointCommand:
    """The 12 motors' command in a decoded LowCmd_ (:func:`cdr.decode_lowcmd`'s flat tuple).

    A motor whose mode is not servo is switched off (stop values, zero gains and torque).
    """
    rows = np.array([values[b : b + 6] for b in _MOTOR_FIELDS], dtype=np.float64)
    mode, q, dq, tau, kp, kd = rows.T
    off = mode != go2.MOTOR_MODE_SERVO
    if off.any():
        q = np.where(off, go2.POS_STOP_F, q)
        dq = np.where(off, go2.VEL_STOP_F, dq)
        kp, kd, tau = (np.where(off, 0.0, a) for a in (kp, kd, tau))
    return JointCommand(q=q, dq=dq, kp=kp, kd=kd, tau=tau)
