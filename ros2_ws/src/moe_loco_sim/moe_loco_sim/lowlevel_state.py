"""What the simulated Go2 reports: one :class:`SimFrame` of MuJoCo state -> LowState_ values.

The bridge publishes :func:`encode_lowstate` on rt/lowstate; the lockstep harness feeds the
controller core :func:`robot_state_from_frame`, which is the *same* bytes decoded by the
controller's own wire layer (:func:`moe_loco_controller.io.lowlevel.robot_state_from_values`), so
both paths see identical values: float32 joints and IMU, int16 foot forces, the remote bytes.

LowState_ fields the sim fills (everything else is zero): head 0xFE 0xEF; IMU quaternion (w, x,
y, z, from the IMU site's frame), gyroscope [rad/s] and accelerometer [m/s^2] in the IMU frame,
rpy [rad] (ZYX Euler from the quaternion), temperature; motors 0..11 mode servo, q, dq, ddq,
tau_est (the torque applied), temperature; foot_force and foot_force_est (normal contact force
on each foot in newtons, rounded and clipped to int16; the real robot's raw sensor values have
another scale); tick [ms]; wireless_remote (40 bytes); a nominal battery (soc, power_v).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from moe_loco_controller.core import go2
from moe_loco_controller.core.remote import REMOTE_BYTES
from moe_loco_controller.core.robot_state import RobotState
from moe_loco_controller.io import cdr
from moe_loco_controller.io.lowlevel import robot_state_from_values
from moe_loco_sim.go2_model import Go2Indices

NEUTRAL_REMOTE = bytes(REMOTE_BYTES)
"""Remote bytes with no key pressed and the sticks centred."""

IMU_TEMPERATURE = 35
MOTOR_TEMPERATURE = 35
BATTERY_SOC = 100
BATTERY_VOLTAGE = 28.8

# Flat LowState_ value indices (cdr.LOWSTATE_FIELDS order) beyond those cdr.py names.
_HEAD = 0
_RPY = cdr.LS_ACC + 3
_IMU_TEMPERATURE = _RPY + 3
_MOTOR_Q = cdr.LS_MOTOR_Q[: go2.NUM_MOTORS]  # mode q dq ddq tau_est q_raw dq_raw ddq_raw temp ..
_BMS = cdr.LS_MOTOR_Q[0] - 1 + go2.NUM_MOTOR_SLOTS * 12  # version_high, version_low, status, soc
_BMS_SOC = _BMS + 3
_FOOT_FORCE_EST = cdr.LS_FOOT_FORCE + 4
_POWER_V = cdr.LS_REMOTE + REMOTE_BYTES + 4  # bit_flag, adc_reel, ntc1, ntc2, power_v

_INT16 = np.iinfo(np.int16)


@dataclass(frozen=True)
class SimFrame:
    """The robot's sensors at one instant of sim time, SDK joint and leg order, SI units."""

    time: float
    """Sim time [s]."""
    q: np.ndarray
    dq: np.ndarray
    ddq: np.ndarray
    tau: np.ndarray
    """The torque the motors apply (the last PD output, clipped) [N m]."""
    quat_wxyz: np.ndarray
    gyro: np.ndarray
    accel: np.ndarray
    foot_force: np.ndarray
    """Normal contact force on each foot [N], FR, FL, RR, RL."""


def read_frame(data: mujoco.MjData, idx: Go2Indices, tau: np.ndarray) -> SimFrame:
    """The frame of ``data`` after ``mj_step1`` (positions, velocities and their sensors current).

    The accelerometer and the foot forces are acceleration-stage sensors: they hold the values of
    the previous ``mj_step2``, i.e. of the physics step that ended at this instant.
    """
    s = data.sensordata
    quat = s[idx.imu_quat]
    quat = quat / np.linalg.norm(quat)
    return SimFrame(
        time=float(data.time),
        q=data.qpos[idx.qpos].copy(),
        dq=data.qvel[idx.qvel].copy(),
        ddq=data.qacc[idx.qvel].copy(),
        tau=np.array(tau, dtype=np.float64),
        quat_wxyz=quat,
        gyro=s[idx.imu_gyro].copy(),
        accel=s[idx.imu_acc].copy(),
        foot_force=s[idx.foot_touch].copy(),
    )


def rpy_from_quat(q: np.ndarray) -> tuple[float, float, float]:
    """Roll, pitch, yaw [rad] (ZYX Euler) of a unit quaternion w, x, y, z."""
    w, x, y, z = (float(v) for v in q)
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))
    yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return roll, pitch, yaw


def _template() -> list:
    v = list(cdr.decode_lowstate(cdr.ENCAPSULATION_LE + bytes(cdr.LOWSTATE_CDR.size)))
    v[_HEAD], v[_HEAD + 1] = go2.LOWCMD_HEAD
    v[_IMU_TEMPERATURE] = IMU_TEMPERATURE
    for b in _MOTOR_Q:
        v[b - 1] = go2.MOTOR_MODE_SERVO
        v[b + 7] = MOTOR_TEMPERATURE
    v[_BMS_SOC] = BATTERY_SOC
    v[_POWER_V] = BATTERY_VOLTAGE
    return v


_TEMPLATE = _template()


def foot_force_int16(force: np.ndarray) -> list[int]:
    """Foot forces [N] as the int16 values on the wire (rounded, clipped; NaN as 0)."""
    lo, hi = int(_INT16.min), int(_INT16.max)
    return [max(lo, min(hi, round(f))) if math.isfinite(f) else 0 for f in force.tolist()]


def lowstate_values(frame: SimFrame, tick: int, remote: bytes = NEUTRAL_REMOTE) -> list:
    """The flat LowState_ value list of ``frame`` (CRC not yet set: :func:`encode_lowstate`)."""
    if len(remote) != REMOTE_BYTES:
        raise ValueError(f"wireless_remote must be {REMOTE_BYTES} bytes, got {len(remote)}")
    v = list(_TEMPLATE)
    with np.errstate(over="ignore"):  # a diverged sim sends inf (the controller flags it)
        f = np.concatenate(
            (frame.quat_wxyz, frame.gyro, frame.accel, frame.q, frame.dq, frame.ddq, frame.tau)
        )
        f = f.astype(np.float32).tolist()
    v[cdr.LS_QUAT : cdr.LS_QUAT + 10] = f[:10]  # quaternion, gyroscope, accelerometer
    v[_RPY : _RPY + 3] = rpy_from_quat(frame.quat_wxyz)
    n = go2.NUM_MOTORS
    for i, b in enumerate(_MOTOR_Q):
        v[b : b + 4] = f[10 + i : 10 + 4 * n : n]  # q, dq, ddq, tau_est
    feet = foot_force_int16(frame.foot_force)
    v[cdr.LS_FOOT_FORCE : cdr.LS_FOOT_FORCE + 4] = feet
    v[_FOOT_FORCE_EST : _FOOT_FORCE_EST + 4] = feet
    v[cdr.LS_TICK] = int(tick) & 0xFFFFFFFF
    v[cdr.LS_REMOTE : cdr.LS_REMOTE + REMOTE_BYTES] = remote
    return v


def encode_lowstate(
    frame: SimFrame, tick: int, remote: bytes = NEUTRAL_REMOTE, crc: bool = True
) -> bytes:
    """The serialised LowState_ of ``frame`` with its CRC (``crc=False``: 0, as Unitree's
    simulator), ready for rt/lowstate."""
    return cdr.encode_lowstate(lowstate_values(frame, tick, remote), crc)


def robot_state_from_frame(
    frame: SimFrame, stamp: float, tick: int | None = None, remote: bytes = NEUTRAL_REMOTE
) -> RobotState:
    """What the controller makes of ``frame`` received at ``stamp``: the wire bytes decoded by the
    controller's own wire layer (float32 values, int16 foot forces, the sanity checks)."""
    tick = round(frame.time * 1000.0) if tick is None else tick
    data = encode_lowstate(frame, tick, remote)
    return robot_state_from_values(cdr.decode_lowstate(data), stamp)
