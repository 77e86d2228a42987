"""Conversions between ROS messages and the core's plain types (the only ROS/core seam): ours
(moe_loco_msgs) and the standard ones (joint_states, imu/data, the estimated velocity,
/diagnostics)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Imu, JointState

from moe_loco_controller.core import go2
from moe_loco_controller.core.controller import CoreStatus, OperatorCommand
from moe_loco_controller.core.diagnostics import HARDWARE_ID, DiagnosticEntry
from moe_loco_controller.core.robot_state import JointCommand, RobotState, check_robot_state
from moe_loco_msgs.msg import ControllerStatus as StatusMsg
from moe_loco_msgs.msg import JointCommand as JointCommandMsg
from moe_loco_msgs.msg import LocoCommand
from moe_loco_msgs.msg import RobotState as RobotStateMsg


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def command_from_msg(msg: LocoCommand, stamp: float) -> OperatorCommand:
    return OperatorCommand(
        vx=float(msg.vx),
        vy=float(msg.vy),
        wz=float(msg.wz),
        gait=int(msg.gait),
        request=int(msg.request),
        estop=bool(msg.estop),
        deadman=bool(msg.deadman),
        stamp=stamp,
    )


def command_to_msg(cmd: OperatorCommand, stamp: Time) -> LocoCommand:
    msg = LocoCommand(
        vx=cmd.vx,
        vy=cmd.vy,
        wz=cmd.wz,
        gait=cmd.gait,
        request=int(cmd.request),
        estop=cmd.estop,
        deadman=cmd.deadman,
    )
    msg.header.stamp = stamp
    return msg


def robot_state_to_msg(state: RobotState, stamp: Time) -> RobotStateMsg:
    msg = RobotStateMsg(
        tick=int(state.tick) & 0xFFFFFFFF, crc_ok=state.crc_ok, receive_time=float(state.stamp)
    )
    msg.header.stamp = stamp
    msg.q, msg.dq, msg.tau_est = _f32(state.q), _f32(state.dq), _f32(state.tau_est)
    msg.imu_quaternion = _f32(state.quat_wxyz)
    msg.imu_gyroscope, msg.imu_accelerometer = _f32(state.gyro), _f32(state.accel)
    msg.foot_force = np.asarray(state.foot_force, dtype=np.int16)
    msg.remote_keys = int(state.remote_keys) & 0xFFFF
    msg.remote_axes = _f32(np.nan_to_num(state.remote_axes))
    return msg


def robot_state_from_msg(msg: RobotStateMsg, stamp: float) -> RobotState:
    """A mirror message as the core's state, stamped with ``stamp`` (its arrival, for staleness)."""
    state = RobotState(
        q=np.array(msg.q, dtype=np.float64),
        dq=np.array(msg.dq, dtype=np.float64),
        tau_est=np.array(msg.tau_est, dtype=np.float64),
        quat_wxyz=np.array(msg.imu_quaternion, dtype=np.float64),
        gyro=np.array(msg.imu_gyroscope, dtype=np.float64),
        accel=np.array(msg.imu_accelerometer, dtype=np.float64),
        foot_force=np.array(msg.foot_force, dtype=np.int16),
        tick=int(msg.tick),
        remote_keys=int(msg.remote_keys),
        remote_axes=np.array(msg.remote_axes, dtype=np.float64),
        stamp=stamp,
        crc_ok=bool(msg.crc_ok),
    )
    problems = check_robot_state(state)
    return RobotState(**{**state.__dict__, "problems": problems}) if problems else state


def joint_command_to_msg(cmd: JointCommand, step: int, mode: int, stamp: Time) -> JointCommandMsg:
    msg = JointCommandMsg(step=step, mode=mode)
    msg.header.stamp = stamp
    msg.q, msg.dq, msg.kp, msg.kd, msg.tau = (
        _f32(a) for a in (cmd.q, cmd.dq, cmd.kp, cmd.kd, cmd.tau)
    )
    return msg


def status_to_msg(
    status: CoreStatus,
    stamp: Time,
    control_time: float,
    operator: OperatorCommand | None,
    link_faults: tuple[tuple[str, str], ...],
    state_stamp: Time | None = None,
    **timing: float | int | str | bool,
) -> StatusMsg:
    """``state_stamp``: the header stamp of the robot_state message whose frame the step used
    (None: no state). ``timing``: period_ms, period_error_ms, compute_ms, overruns,
    bad_crc_frames, policy, sport_mode_active (fields the node measures)."""
    msg = StatusMsg(
        control_time=float(control_time),
        operator_time=math.nan if operator is None else float(operator.stamp),
        link_faults=[f for f, _ in link_faults],
        mode=int(status.mode),
        mode_name=status.mode_name,
        gait=int(status.gait),
        step=int(status.step),
        faults=list(status.faults),
        state_age_ms=float(min(status.state_age_s * 1e3, 3.0e38)),
        **timing,
    )
    msg.header.stamp = stamp
    if state_stamp is not None:
        msg.state_stamp = state_stamp
    if operator is not None:
        msg.operator_command = command_to_msg(operator, stamp)
    msg.command = _f32(status.command)
    msg.gate_weights = _f32(status.gate).tolist()
    msg.expert_scale = _f32(status.expert_scale).tolist()
    msg.estimated_lin_vel = _f32(status.estimated_lin_vel)
    return msg


# ---------------------------------------------------------------------- the standard messages
BASE_FRAME = "base"
"""The Go2 URDF's body link (unitree_ros go2_description)."""
IMU_FRAME = "imu"
"""The Go2 URDF's IMU link (fixed to ``base``)."""
_URDF_FROM_SDK = [go2.JOINT_NAMES.index(n) for n in go2.URDF_JOINT_NAMES]


def joint_state_to_msg(state: RobotState, stamp: Time) -> JointState:
    """The measured joints in the URDF's declaration order (FL, FR, RL, RR; the SDK order is FR,
    FL, RR, RL): position [rad], velocity [rad/s], effort = the motors' torque estimate [N m]."""
    msg = JointState(name=list(go2.URDF_JOINT_NAMES))
    msg.header.stamp = stamp
    idx = _URDF_FROM_SDK
    msg.position = [float(v) for v in np.asarray(state.q)[idx]]
    msg.velocity = [float(v) for v in np.asarray(state.dq)[idx]]
    msg.effort = [float(v) for v in np.asarray(state.tau_est)[idx]]
    return msg


def imu_to_msg(state: RobotState, stamp: Time) -> Imu:
    """The Go2's IMU: orientation (the SDK gives w, x, y, z), gyro [rad/s], accelerometer [m/s^2];
    covariances unknown (all zeros, the sensor_msgs convention)."""
    msg = Imu()
    msg.header.stamp = stamp
    msg.header.frame_id = IMU_FRAME
    w, x, y, z = (float(v) for v in state.quat_wxyz)
    msg.orientation.w, msg.orientation.x, msg.orientation.y, msg.orientation.z = w, x, y, z
    g, a = state.gyro, state.accel
    msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = (float(v) for v in g)
    lin = msg.linear_acceleration
    lin.x, lin.y, lin.z = (float(v) for v in a)
    return msg


def velocity_to_msg(linear: np.ndarray, stamp: Time) -> TwistStamped:
    """The estimator's base linear velocity (body frame, ``base``); its angular part is not
    estimated and is left zero."""
    msg = TwistStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = BASE_FRAME
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in linear[:3])
    return msg


def diagnostics_to_msg(
    entries: Sequence[DiagnosticEntry], stamp: Time, hardware_id: str = HARDWARE_ID
) -> DiagnosticArray:
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = [
        DiagnosticStatus(
            level=bytes([e.level]),
            name=e.name,
            message=e.message,
            hardware_id=hardware_id,
            values=[KeyValue(key=k, value=v) for k, v in e.values],
        )
        for e in entries
    ]
    return msg
