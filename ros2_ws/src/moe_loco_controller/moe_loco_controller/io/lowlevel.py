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
from moe_loco_controller.core.command_guard import command_problems
from moe_loco_controller.core.remote import parse_remote
from moe_loco_controller.core.robot_state import JointCommand, RobotState, check_robot_state
from moe_loco_controller.io import cdr
from moe_loco_controller.io.crc import lowcmd_crc
from moe_loco_controller.io.unitree_sdk import sdk

_MOTORS = range(go2.NUM_MOTORS)


class CommandRefusedError(ValueError):
    """A joint command the command check refuses to put on the wire; ``problems`` says why."""

    def __init__(self, problems: tuple[str, ...]) -> None:
        self.problems = problems
        super().__init__("joint command refused: " + "; ".join(problems))


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


def robot_state_from_values(values: tuple, stamp: float) -> RobotState:
    """:func:`lowstate_to_robot_state` for a LowState_ decoded by :mod:`.cdr` (no IDL objects)."""
    q = np.array([values[i] for i in cdr.LS_MOTOR_Q[:12]], dtype=np.float64)
    dq = np.array([values[i + 1] for i in cdr.LS_MOTOR_Q[:12]], dtype=np.float64)
    tau = np.array([values[i + 3] for i in cdr.LS_MOTOR_Q[:12]], dtype=np.float64)
    remote = values[cdr.LS_REMOTE : cdr.LS_REMOTE + 40]
    keys, axes = parse_remote(remote)
    state = RobotState(
        q=q,
        dq=dq,
        tau_est=tau,
        quat_wxyz=np.array(values[cdr.LS_QUAT : cdr.LS_QUAT + 4], dtype=np.float64),
        gyro=np.array(values[cdr.LS_GYRO : cdr.LS_GYRO + 3], dtype=np.float64),
        accel=np.array(values[cdr.LS_ACC : cdr.LS_ACC + 3], dtype=np.float64),
        foot_force=np.array(values[cdr.LS_FOOT_FORCE : cdr.LS_FOOT_FORCE + 4], dtype=np.int16),
        tick=int(values[cdr.LS_TICK]),
        remote_keys=keys,
        remote_axes=axes,
        stamp=stamp,
    )
    problems = check_robot_state(state)
    if problems:
        state = RobotState(**{**state.__dict__, "problems": problems})
    return state


def decode_frame(data: bytes, stamp: float, verify_crc: bool = True) -> RobotState | None:
    """A serialised LowState_ as a :class:`RobotState` (values flagged, never refused); None if
    its CRC is wrong; ``ValueError`` if it is no LowState_ at all."""
    values = cdr.decode_lowstate(data)
    if verify_crc and cdr.lowstate_values_crc(values) != values[cdr.LS_CRC]:
        return None
    return robot_state_from_values(values, stamp)


def _crc_field(data: bytes) -> int | None:
    """The CRC field of a serialised LowState_ (None if it is too short to have one)."""
    try:
        return int(cdr.decode_lowstate(data)[cdr.LS_CRC])
    except Exception:
        return None


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

    Raises :class:`CommandRefusedError`, leaving ``cmd`` untouched, if the command check finds
    anything wrong (non-finite as float32, a target or gain out of bounds): it must never reach
    the wire.
    """
    problems = command_problems(command)
    if problems:
        raise CommandRefusedError(problems)
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


def _participant() -> Any:
    participant = sdk.ChannelFactory._ChannelFactory__participant
    if participant is None:
        raise RuntimeError("init_channels() must be called before opening a reader or writer")
    return participant


class DeliveryDelay:
    """How much later than usual a frame was delivered, from its DDS source timestamp.

    ``offset = arrival (wall clock) - source timestamp`` holds the link's latency plus the
    difference between the two machines' clocks; its lowest value seen (allowed to rise by
    ``drift`` seconds per second, for clocks that drift apart) is the fastest delivery. A frame's
    excess over it is how long it sat somewhere before arriving: a frame published 1 s ago and
    delivered now is 1 s old, whatever its arrival says. Every frame late by the same amount for
    ``rebase_s`` is a step of one of the clocks, not a delay: the excess is measured from there on
    (the frames in between read as stale, and the controller damps: safe, and visible).
    """

    def __init__(self, drift: float = 1e-4, rebase_s: float = 2.0, late_s: float = 0.02) -> None:
        self.drift = drift
        self.rebase_s = rebase_s
        self.late_s = late_s
        self._base: float | None = None
        self._at = 0.0
        self._late_since: float | None = None
        self.rebases = 0

    def excess(self, arrival_wall: float, source_ns: int) -> float:
        offset = arrival_wall - source_ns * 1e-9
        if self._base is None:
            self._base = offset
        else:
            self._base = min(self._base + self.drift * max(0.0, arrival_wall - self._at), offset)
        self._at = arrival_wall
        excess = max(0.0, offset - self._base)
        if excess <= self.late_s:
            self._late_since = None
        elif self._late_since is None:
            self._late_since = arrival_wall
        elif arrival_wall - self._late_since > self.rebase_s:
            self._base, self._late_since = offset, None
            self.rebases += 1
            excess = 0.0
        return excess


class LowStateReader:
    """Subscribes to ``rt/lowstate``; keeps the latest good frame; counts and drops bad CRCs.

    Every sample is taken from DDS as it arrives (in the DDS listener thread) and stamped then
    with ``clock()``, less any delivery delay its source timestamp shows (:class:`DeliveryDelay`):
    a state's ``stamp`` is when it left the robot, on our clock, so that staleness counts from
    there, never from when the controller got round to reading it. Two modes. With ``on_state``,
    every frame is converted in the listener and passed on (tests, tools). Without it (the
    controller), the listener keeps only the newest sample's bytes and :meth:`latest` converts it
    when asked: at 50 Hz control and 500 Hz LowState that decodes one frame in ten.
    """

    def __init__(
        self,
        on_state: Callable[[RobotState], None] | None = None,
        topic: str = go2.TOPIC_LOWSTATE,
        clock: Callable[[], float] = time.monotonic,
        verify_crc: bool = True,
    ) -> None:
        from cyclonedds._clayer import ddspy_take
        from cyclonedds.core import Listener
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic

        self._take_raw = ddspy_take
        self._on_state = on_state
        self._clock = clock
        self._verify_crc = verify_crc
        self._lock = threading.Lock()
        self._latest: RobotState | None = None
        self._pending: tuple[bytes, float] | None = None  # newest undecoded sample, its stamp
        self._delay = DeliveryDelay()
        self.frames = 0
        self.bad_crc = 0
        self.zero_crc = 0
        """Bad-CRC frames whose CRC field is 0 (Unitree's MuJoCo simulator sends no CRC)."""
        self.flagged = 0
        self.samples = 0
        participant = _participant()
        self._topic = Topic(participant, topic, sdk.LowState_)
        self._reader = DataReader(
            participant, self._topic, listener=Listener(on_data_available=self._on_data)
        )

    def _take(self, n: int) -> list[tuple[bytes, float]]:
        """Serialised samples (decoded by :mod:`.cdr`, not CycloneDDS's Python IDL), stamped."""
        ret = self._take_raw(self._reader._ref, n)
        if isinstance(ret, int):
            raise RuntimeError(f"rt/lowstate take failed with DDS error {ret}")
        now, wall = self._clock(), time.time()
        return [
            (data, now - self._delay.excess(wall, info.source_timestamp))
            for data, info in ret
            if info.valid_data
        ]

    def _on_data(self, _reader: Any) -> None:
        try:
            samples = self._take(64)
        except Exception:  # a DDS error must never kill the listener
            return
        if self._on_state is None:
            if samples:
                with self._lock:
                    self.samples += len(samples)
                    self._pending = samples[-1]
            return
        for data, stamp in samples:
            state = self._handle(data, stamp)
            if state is not None:
                self._on_state(state)

    def _handle(self, data: bytes, stamp: float) -> RobotState | None:
        try:
            state = decode_frame(data, stamp, self._verify_crc)
        except Exception:  # a malformed frame must never kill the reader
            state = None
        if state is None:
            with self._lock:
                self.bad_crc += 1
                if _crc_field(data) == 0:
                    self.zero_crc += 1
            return None
        with self._lock:
            self.frames += 1
            if state.problems:
                self.flagged += 1
            self._latest = state
        return state

    def latest(self) -> RobotState | None:
        """The newest good frame (decoding the newest sample first in polling mode)."""
        if self._on_state is None:
            with self._lock:
                pending, self._pending = self._pending, None
            if pending is not None:
                self._handle(*pending)
        with self._lock:
            return self._latest

    def close(self) -> None:
        """Stop reading: detach the listener first (DDS waits for a callback in progress), so
        that the reader is deleted here: dropped inside its own callback, whose argument holds
        the last reference, its deletion waits for that callback and deadlocks."""
        reader = self._reader
        if reader is not None:
            reader.set_listener(None)  # returns once no callback runs: none uses _reader after
        self._reader = None  # type: ignore[assignment]
        del reader


class LowCmdWriter:
    """Publishes :class:`JointCommand` s on ``rt/lowcmd`` as LowCmd_ with a valid CRC.

    Serialised by :mod:`.cdr` (not CycloneDDS's Python IDL, ~0.15 ms a message), and cached: the
    stream repeats each control step's targets about ten times (500 Hz vs 50 Hz), so a command is
    encoded once and its bytes re-sent until the command object changes.
    """

    def __init__(self, topic: str = go2.TOPIC_LOWCMD) -> None:
        from cyclonedds._clayer import ddspy_write
        from cyclonedds.pub import DataWriter
        from cyclonedds.topic import Topic

        participant = _participant()
        self._topic = Topic(participant, topic, sdk.LowCmd_)
        self._writer = DataWriter(participant, self._topic)
        self._write_bytes = ddspy_write
        self._template = cdr.lowcmd_values(new_lowcmd())
        self._cached: tuple[JointCommand, bytes] | None = None
        self.sent = 0

    def encode(self, command: JointCommand) -> bytes:
        """The serialised LowCmd_ for ``command``; :class:`CommandRefusedError` (nothing sent) if
        the command check (:func:`~..core.command_guard.command_problems`) finds anything wrong."""
        problems = command_problems(command)
        if problems:
            raise CommandRefusedError(problems)
        v = list(self._template)
        cols = (command.q, command.dq, command.tau, command.kp, command.kd)
        q, dq, tau, kp, kd = (np.asarray(a, dtype=np.float64).tolist() for a in cols)
        for i in range(go2.NUM_MOTORS):
            b = cdr.LC_MOTOR0 + i * cdr.LC_MOTOR_LEN
            v[b : b + 6] = (go2.MOTOR_MODE_SERVO, q[i], dq[i], tau[i], kp[i], kd[i])
        return cdr.encode_lowcmd(v)

    def send(self, command: JointCommand) -> None:
        cached = self._cached
        if cached is None or cached[0] is not command:
            cached = self._cached = (command, self.encode(command))
        ret = self._write_bytes(self._writer._ref, cached[1])
        if ret < 0:
            raise RuntimeError(f"rt/lowcmd write failed with DDS error {ret}")
        self.sent += 1

    def close(self) -> None:
        self._writer = None  # type: ignore[assignment]
        self._cached = None


class LowCmdPublisherMonitor:
    """Counts the DDS writers of ``rt/lowcmd`` other than ours (another controller, or the app).

    A reader on the topic with a subscription-matched listener: every matched writer counts, and
    ``own_writers`` (ours, in this process) are subtracted.
    """

    def __init__(self, topic: str = go2.TOPIC_LOWCMD, own_writers: int = 0) -> None:
        from cyclonedds.core import Listener
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic

        participant = _participant()
        self.own_writers = own_writers
        self._matched = 0
        self._lock = threading.Lock()
        self._topic = Topic(participant, topic, sdk.LowCmd_)
        self._reader = DataReader(
            participant, self._topic, listener=Listener(on_subscription_matched=self._on_matched)
        )

    def _on_matched(self, _reader: Any, status: Any) -> None:
        with self._lock:
            self._matched = int(status.current_count)

    @property
    def others(self) -> int:
        """Writers of the topic that are not ours."""
        with self._lock:
            return max(0, self._matched - self.own_writers)

    def close(self) -> None:
        del self._reader
