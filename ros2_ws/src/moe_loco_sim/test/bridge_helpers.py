"""Helpers shared by the sim bridge's tests: commands, fake DDS ports, the bridge in its own
process, joystick messages."""

import json
import signal
import subprocess
import sys
import threading

import numpy as np

from moe_loco_controller.core import go2
from moe_loco_controller.core.robot_state import JointCommand
from moe_loco_controller.io.lowlevel import build_lowcmd


def stand_command(kp=60.0, kd=5.0, q=None, tau=0.0):
    q = go2.DEFAULT_STANDING_POSE if q is None else q
    return JointCommand(
        np.array(q, dtype=float), np.zeros(12), np.full(12, kp), np.full(12, kd), np.full(12, tau)
    )


def encoded(command: JointCommand) -> bytes:
    return build_lowcmd(command).serialize()  # the SDK's IDL path, CRC set by the wire layer


class FakePorts:
    def __init__(self):
        self.inbox, self.wireless, self.sent = [], [], []

    def take_lowcmd(self):
        out, self.inbox = self.inbox, []
        return out

    def take_wireless(self):
        out, self.wireless = self.wireless, []
        return out

    def write_lowstate(self, data):
        self.sent.append(data)


class BridgeProcess:
    """``moe-loco-sim`` in its own process on the test's Unitree domain; its JSON reports."""

    def __init__(self, domain, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moe_loco_sim.bridge", "--domain", str(domain),
             "--interface", "lo", "--report-every", "0.1", "--exit-with-parent",
             "--duration", "120", *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self.reports = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.reports.append(json.loads(line))

    @property
    def last(self):
        return self.reports[-1] if self.reports else None

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def joy_msg(*buttons):
    from sensor_msgs.msg import Joy

    from moe_loco_controller.core.joystick import JoyMapping

    mapping = JoyMapping()
    msg = Joy()
    msg.axes = [0.0] * 8
    pressed = [0] * 11
    for b in buttons:
        pressed[mapping.buttons[b]] = 1
    msg.buttons = pressed
    return msg
