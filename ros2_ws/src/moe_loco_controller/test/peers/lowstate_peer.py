"""A scripted robot for tests: publishes LowState_ on rt/lowstate over CycloneDDS.

    python lowstate_peer.py DOMAIN IFACE --rate 200 --duration 10 --bad-every 5 --nan-every 0

Frame k carries tick = k and a deterministic, SDK-ordered content (see ``expected_q``), so the
receiving test can check joint order and quaternion order. Every ``--bad-every``-th frame gets a
corrupted CRC and tick = BAD_TICK_BASE + k, so a test can tell whether one was ever used.
Every ``--nan-every``-th frame (valid CRC) carries NaN in q[4] and an out-of-range calf.
With ``--follow`` it is a kinematic robot instead: upright and still, crouched at start, each
joint moving toward the latest rt/lowcmd position target (first order, 0.1 s) while its kp > 0.
It checks every LowCmd_ it receives (CRC, finite values) and prints a JSON line of counts every
0.25 s (with the gaps between LowCmd_ arrivals since the last line, in ms), so tests and the
benchmark can judge the command stream from outside the controller's process.
Exits after ``--duration`` seconds or when its parent process disappears.
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
from moe_loco_controller.core.remote import pack_remote
from moe_loco_controller.io.crc import lowcmd_crc, lowstate_crc
from moe_loco_controller.io.lowlevel import init_channels
from moe_loco_controller.io.unitree_sdk import sdk

BAD_TICK_BASE = 1_000_000
NAN_TICK_BASE = 2_000_000
QUAT_WXYZ = np.array([0.9, 0.1, -0.2, 0.3]) / np.linalg.norm([0.9, 0.1, -0.2, 0.3])
GYRO = (0.11, -0.22, 0.33)
ACCEL = (0.5, -0.4, 9.7)
REMOTE_KEYS = 1 << go2.REMOTE_KEYS["A"]
REMOTE_AXES = (0.25, -0.5, 0.75, -1.0, 0.0)


def expected_q() -> np.ndarray:
    """q of SDK joint i: inside its range, distinct per joint."""
    return go2.JOINT_LOWER + 0.1 + 0.01 * np.arange(12)


def make_frame(k: int, bad_crc: bool, nan: bool) -> object:
    msg = sdk.default_LowState()
    q = expected_q()
    for i in range(12):
        m = msg.motor_state[i]
        m.q = float(q[i])
        m.dq = 0.1 * i
        m.tau_est = -0.05 * i
    msg.imu_state.quaternion = [float(v) for v in QUAT_WXYZ]
    msg.imu_state.gyroscope = list(GYRO)
    msg.imu_state.accelerometer = list(ACCEL)
    msg.foot_force = [10, 20, 30, 40]
    msg.wireless_remote = list(pack_remote(REMOTE_KEYS, np.array(REMOTE_AXES)))
    msg.tick = k
    if nan:
        msg.tick = NAN_TICK_BASE + k
        msg.motor_state[4].q = float("nan")
        msg.motor_state[2].q = 1.5  # a calf far above its range
    if bad_crc:
        msg.tick = BAD_TICK_BASE + k
    msg.crc = lowstate_crc(msg)
    if bad_crc:
        msg.crc ^= 0x1
    return msg


CROUCH = np.array([0.0, 1.2, -2.6] * 4)


class Follower:
    """Joint positions that follow rt/lowcmd targets; the frames report them upright and still."""

    def __init__(self) -> None:
        self.q = CROUCH.copy()
        self.target: np.ndarray | None = None
        self.lock = threading.Lock()
        self.stats = {"count": 0, "bad_crc": 0, "non_finite": 0, "kp": [], "kd": [], "gaps": []}
        self._last_arrival: float | None = None
        self.sub = sdk.ChannelSubscriber(go2.TOPIC_LOWCMD, sdk.LowCmd_)
        self.sub.Init(self._on_cmd, 10)

    def _on_cmd(self, cmd: object) -> None:
        m = cmd.motor_cmd
        values = [v for c in m for v in (c.q, c.dq, c.kp, c.kd, c.tau)]
        now = time.monotonic()
        with self.lock:
            s = self.stats
            if self._last_arrival is not None:  # ms between LowCmd_ arrivals, since last report
                s["gaps"].append(round((now - self._last_arrival) * 1e3, 4))
            self._last_arrival = now
            s["count"] += 1
            s["bad_crc"] += int(lowcmd_crc(cmd) != cmd.crc)
            s["non_finite"] += int(not all(math.isfinite(v) for v in values))
            s["kp"] = [m[i].kp for i in range(12)]
            s["kd"] = [m[i].kd for i in range(12)]
        if all(m[i].kp > 0 for i in range(12)):
            self.target = np.array([m[i].q for i in range(12)])
        else:
            self.target = None

    def frame(self, k: int) -> object:
        if self.target is not None:
            self.q += (self.target - self.q) * 0.05
        msg = sdk.default_LowState()
        for i in range(12):
            msg.motor_state[i].q = float(self.q[i])
        msg.imu_state.quaternion = [1.0, 0.0, 0.0, 0.0]
        msg.imu_state.accelerometer = [0.0, 0.0, 9.81]
        msg.tick = k
        msg.crc = lowstate_crc(msg)
        return msg


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("domain", type=int)
    ap.add_argument("iface")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--bad-every", type=int, default=0)
    ap.add_argument("--nan-every", type=int, default=0)
    ap.add_argument("--follow", action="store_true")
    a = ap.parse_args()
    init_channels(a.domain, a.iface)
    pub = sdk.ChannelPublisher(go2.TOPIC_LOWSTATE, sdk.LowState_)
    pub.Init()
    follower = Follower() if a.follow else None
    parent = os.getppid()
    period = 1.0 / a.rate
    start = time.monotonic()
    k = 0
    next_report = start
    while time.monotonic() - start < a.duration and os.getppid() == parent:
        if follower and time.monotonic() >= next_report:
            next_report += 0.25
            with follower.lock:
                print(json.dumps({"t": time.monotonic(), **follower.stats}), flush=True)
                follower.stats["gaps"] = []
        bad = a.bad_every > 0 and k % a.bad_every == a.bad_every - 1
        nan = a.nan_every > 0 and k % a.nan_every == a.nan_every - 1
        pub.Write(follower.frame(k) if follower else make_frame(k, bad, nan))
        k += 1
        time.sleep(max(0.0, start + k * period - time.monotonic()))
    print(f"published {k} frames", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
