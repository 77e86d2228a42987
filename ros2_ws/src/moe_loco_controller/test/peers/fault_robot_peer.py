"""A scripted robot that misbehaves on request: LowState_ faults, and a judge of every LowCmd_.

    python fault_robot_peer.py DOMAIN IFACE --rate 500 --duration 120

A kinematic Go2 (upright, each joint following the latest rt/lowcmd position target while its
kp > 0) publishing rt/lowstate at ``--rate``. A line on stdin switches its LowState_ behaviour:

    none       normal frames (tick = the ms since start)
    stop       nothing published
    flood      20 fresh frames per period (10 kHz at 500 Hz)
    duplicate  the frame of the switch, re-sent unchanged every period (its tick stands still)
    stale      fresh content, but each frame's DDS source timestamp is 1 s old (delivered late)
    backwards  the tick jumps back by 1000 ms and goes on from there
    badcrc     every frame's CRC broken
    mark       (no change) the damping clock restarts here, for faults injected elsewhere

Every LowCmd_ received is judged here, outside the controller's process: CRC, finite values,
and the controller's own command check (``command_problems``: out of bounds). Each 0.05 s (and
right after a switch) it prints a JSON line: counts, the fault in force and when it began, and
when the first damping LowCmd_ (every kp 0, every kd > 0) arrived since then, on this host's
monotonic clock (the same clock as the test's). Exits after ``--duration`` s or with its parent.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time

import numpy as np

from moe_loco_controller.core import go2
from moe_loco_controller.core.command_guard import command_problems
from moe_loco_controller.core.robot_state import JointCommand
from moe_loco_controller.io.crc import lowcmd_crc, lowstate_crc
from moe_loco_controller.io.lowlevel import _participant, init_channels
from moe_loco_controller.io.unitree_sdk import sdk

FAULTS = ("none", "stop", "flood", "duplicate", "stale", "backwards", "badcrc")
CROUCH = np.array([0.0, 1.2, -2.6] * 4)


class Judge:
    """Counts and checks every LowCmd_; follows its position targets."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.q = CROUCH.copy()
        self.target: np.ndarray | None = None
        self.fault = "none"
        self.fault_t = time.monotonic()
        self.s = {
            "count": 0,
            "bad_crc": 0,
            "non_finite": 0,
            "out_of_bounds": 0,
            "first_problem": "",
            "damping": 0,
            "first_damp_t": None,
            "last_kp": 0.0,
            "last_kd": 0.0,
        }
        self.sub = sdk.ChannelSubscriber(go2.TOPIC_LOWCMD, sdk.LowCmd_)
        self.sub.Init(self._on_cmd, 10)

    def _on_cmd(self, cmd: object) -> None:
        t = time.monotonic()
        m = cmd.motor_cmd[:12]
        cols = {k: np.array([getattr(c, k) for c in m], dtype=np.float64) for k in go2_fields()}
        finite = all(math.isfinite(v) for a in cols.values() for v in a)
        problems = command_problems(JointCommand(**cols))
        damping = bool(np.all(cols["kp"] == 0) and np.all(cols["kd"] > 0))
        with self.lock:
            s = self.s
            s["count"] += 1
            s["bad_crc"] += int(lowcmd_crc(cmd) != cmd.crc)
            s["non_finite"] += int(not finite)
            if problems:
                s["out_of_bounds"] += 1
                s["first_problem"] = s["first_problem"] or problems[0]
            s["damping"] += int(damping)
            if damping and s["first_damp_t"] is None:
                s["first_damp_t"] = t
            s["last_kp"], s["last_kd"] = float(cols["kp"][0]), float(cols["kd"][0])
            self.target = cols["q"] if np.all(cols["kp"] > 0) else None

    def switch(self, fault: str) -> None:
        with self.lock:
            self.fault, self.fault_t = fault, time.monotonic()
            self.s["first_damp_t"] = None

    def report(self) -> None:
        """Print the counts as one JSON line (one writer at a time: lines never interleave)."""
        with self.lock:
            line = json.dumps({"t": time.monotonic(), "fault": self.fault,
                               "fault_t": self.fault_t, **self.s})  # fmt: skip
            print(line, flush=True)


def go2_fields() -> tuple[str, ...]:
    return ("q", "dq", "kp", "kd", "tau")


def frame(q: np.ndarray, tick: int, bad_crc: bool = False) -> object:
    msg = sdk.default_LowState()
    for i in range(12):
        msg.motor_state[i].q = float(q[i])
    msg.imu_state.quaternion = [1.0, 0.0, 0.0, 0.0]
    msg.imu_state.accelerometer = [0.0, 0.0, 9.81]
    msg.tick = tick & 0xFFFFFFFF
    msg.crc = lowstate_crc(msg)
    if bad_crc:
        msg.crc ^= 0x1
    return msg


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("domain", type=int)
    ap.add_argument("iface")
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--duration", type=float, default=120.0)
    a = ap.parse_args()
    init_channels(a.domain, a.iface)
    from cyclonedds.pub import DataWriter
    from cyclonedds.topic import Topic

    participant = _participant()
    writer = DataWriter(participant, Topic(participant, go2.TOPIC_LOWSTATE, sdk.LowState_))
    judge = Judge()

    def read_commands() -> None:
        for line in sys.stdin:
            word = line.strip()
            if word in FAULTS or word == "mark":  # mark: only restart the damping clock
                judge.switch(judge.fault if word == "mark" else word)
                judge.report()

    threading.Thread(target=read_commands, daemon=True).start()
    parent = os.getppid()
    period = 1.0 / a.rate
    start = time.monotonic()
    k = 0
    tick_offset = 0
    duplicate: object | None = None
    jumped_for = -1.0
    next_report = start
    while time.monotonic() - start < a.duration and os.getppid() == parent:
        now = time.monotonic()
        if now >= next_report:
            next_report = now + 0.05
            judge.report()
        with judge.lock:
            if judge.target is not None:
                judge.q += (judge.target - judge.q) * 0.05
            q, fault = judge.q.copy(), judge.fault
        if fault == "backwards" and jumped_for != judge.fault_t:  # once per switch
            jumped_for = judge.fault_t
            tick_offset -= 1000
        tick = int((now - start) * 1000) + tick_offset
        if fault != "duplicate":
            duplicate = None
        if fault in ("none", "backwards"):
            writer.write(frame(q, tick))
        elif fault == "badcrc":
            writer.write(frame(q, tick, bad_crc=True))
        elif fault == "flood":
            for _ in range(20):
                writer.write(frame(q, tick))
        elif fault == "duplicate":
            duplicate = duplicate or frame(q, tick)
            writer.write(duplicate)
        elif fault == "stale":
            writer.write(frame(q, tick), timestamp=time.time_ns() - 1_000_000_000)
        k += 1
        time.sleep(max(0.0, start + k * period - time.monotonic()))
    judge.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
