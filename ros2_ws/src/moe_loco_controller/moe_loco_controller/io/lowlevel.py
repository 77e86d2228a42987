"""The Go2 wire layer: LowState_ -> :class:`RobotState`, :class:`JointCommand` -> LowCmd_.

Conversions are plain functions (tested without DDS); :class:`LowStateReader` and
:class:`LowCmdWriter` put them on Unitree's own channels (``rt/lowstate``, ``rt/lowcmd``).
Incoming frames with a bad CRC are counted and dropped, never used and never fatal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from moe_loco_controller.core import go2
from moe_loco_controller.core.remote import parse_remote
from moe_loco_controller.core.robot_state import JointCommand, RobotState, check_robot_state
from moe_loco_controller.io.crc import lowcmd_crc, lowstate_crc
from moe_loco_controller.io.unitree_sdk import sdk

_MOTORS = range(go2.NUM_MOTORS)


def lowstate_to_robot_state(msg: Any, stamp: float, crc_ok: bool = True) -> RobotState:
    """Convert a LowState_ to a :class:`RobotState`; never raises on bad values, flags them.

    The joint arrays keep SDK order (the wire's). The IMU quaternion is already w, x, y, z on
    the wire. ``problems`` lists what :func:`check_robot_state` found (NaN, out of range, ...).
    """
    ms = msg.motor_state
    q = np.array([ms[i].q for i in _MOTORS], dtype=np.float64)
    dq = np.array([ms[i].dq for i in _MOTORS], dtype=np.float64)
    tau = np.array([ms[i].tau_est for i in _MOTORS], dtype=np.float64)
    imu = msg.imu_state
    try:
        keys, axes = parse_remote(msg.wireless_remote)
    except ValueError:
        keys, axes = 0, np.full(5, np.nan)
    state = RobotState(
        q=q,
        dq=dq,
        tau_est=tau,
        quat_wxyz=np.array(imu.quaternion, dtype=np.float64),
        gyro=np.array(imu.gyroscope, dtype=np.float64),
        accel=np.array(imu.accelerometer, dtype=np.float64),
        foot_force=np.array(msg.foot_force, dtype=np.int16),
        tick=int(msg.tick),
        remote_keys=keys,
        remote_axes=axes,
        stamp=stamp,
        crc_ok=crc_ok,
    )
    problems = check_robot_state(state)
    if problems:
        state = RobotState(**{**state.__dict__, "problems": problems})
    return state


def new_lowcmd() -> Any:
    """A LowCmd_ with the header and every motor idle (stop values, zero gains)."""
    cmd = sdk.default_LowCmd()
    cmd.head = list(go2.LOWCMD_HEAD)
    cmd.level_flag = go2.LOWCMD_LEVEL_FLAG
    cmd.gpio = 0
    for m in cmd.motor_cmd:
        m.mode = go2.MOTOR_MODE_SERVO
        m.q = go2.POS_STOP_F
        m.dq = go2.VEL_STOP_F
        m.kp = 0.0
        m.kd = 0.0
        m.tau = 0.0
    return cmd


def fill_lowcmd(cmd: Any, command: JointCommand) -> Any:
    """Write a :class:`JointCommand` (SDK order) into motors 0..11 of ``cmd`` and set its CRC.

    Raises ValueError, leaving ``cmd`` untouched, if any value is not finite: a NaN must never
    reach the wire.
    """
    if not command.is_finite():
        raise ValueError("joint command has non-finite values; refusing to send it")
    arrays = [
        np.asarray(a, dtype=np.float64)
        for a in (command.q, command.dq, command.kp, command.kd, command.tau)
    ]
    for a in arrays:
        if a.shape != (go2.NUM_MOTORS,):
            raise ValueError(f"joint command arrays must have shape (12,), got {a.shape}")
    q, dq, kp, kd, tau = (a.tolist() for a in arrays)
    mc = cmd.motor_cmd
    for i in _MOTORS:
        m = mc[i]
        m.mode = go2.MOTOR_MODE_SERVO
        m.q = q[i]
        m.dq = dq[i]
        m.kp = kp[i]
        m.kd = kd[i]
        m.tau = tau[i]
    cmd.crc = lowcmd_crc(cmd)
    return cmd


def build_lowcmd(command: JointCommand) -> Any:
    """A fresh LowCmd_ carrying ``command``, with a valid CRC."""
    return fill_lowcmd(new_lowcmd(), command)


def init_channels(domain_id: int, interface: str | None) -> None:
    """Initialise the SDK's DDS participant (once per process) on ``interface`` (e.g. ``"lo"``)."""
    if interface:
        sdk.ChannelFactoryInitialize(domain_id, interface)
    else:
        sdk.ChannelFactoryInitialize(domain_id)


class LowStateReader:
    """Subscribes to ``rt/lowstate``; keeps the latest good frame; counts and drops bad CRCs.

    ``on_state`` (optional) is called from the SDK's reader thread with each good
    :class:`RobotState`. ``clock`` stamps frames on arrival (monotonic seconds by default).
    """

    def __init__(
        self,
        on_state: Callable[[RobotState], None] | None = None,
        topic: str = go2.TOPIC_LOWSTATE,
        clock: Callable[[], float] = time.monotonic,
        verify_crc: bool = True,
    ) -> None:
        self._on_state = on_state
        self._clock = clock
        self._verify_crc = verify_crc
        self._lock = threading.Lock()
        self._latest: RobotState | None = None
        self.frames = 0
        self.bad_crc = 0
        self.flagged = 0
        self._sub = sdk.ChannelSubscriber(topic, sdk.LowState_)
        self._sub.Init(self._handle, 10)

    def _handle(self, msg: Any) -> None:
        stamp = self._clock()
        try:
            if self._verify_crc and lowstate_crc(msg) != msg.crc:
                with self._lock:
                    self.bad_crc += 1
                return
            state = lowstate_to_robot_state(msg, stamp)
        except Exception:  # a malformed frame must never kill the reader thread
            with self._lock:
                self.bad_crc += 1
            return
        with self._lock:
            self.frames += 1
            if state.problems:
                self.flagged += 1
            self._latest = state
        if self._on_state is not None:
            self._on_state(state)

    def latest(self) -> RobotState | None:
        with self._lock:
            return self._latest

    def close(self) -> None:
        self._sub.Close()


class LowCmdWriter:
    """Publishes :class:`JointCommand` s on ``rt/lowcmd`` as LowCmd_ with a valid CRC."""

    def __init__(self, topic: str = go2.TOPIC_LOWCMD) -> None:
        self._pub = sdk.ChannelPublisher(topic, sdk.LowCmd_)
        self._pub.Init()
        self._cmd = new_lowcmd()
        self.sent = 0

    def send(self, command: JointCommand) -> None:
        fill_lowcmd(self._cmd, command)
        self._pub.Write(self._cmd)
        self.sent += 1

    def close(self) -> None:
        self._pub.Close()
