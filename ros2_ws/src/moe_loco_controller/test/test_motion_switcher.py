"""Motion-switcher release against a scripted robot service over CycloneDDS on ``lo``."""

import subprocess
import sys
from pathlib import Path

import pytest

from moe_loco_controller.io.motion_switcher import (
    MotionSwitcherClient,
    MotionSwitcherError,
    release_sport_mode,
)

PEER = Path(__file__).parent / "peers" / "motion_switcher_peer.py"


@pytest.fixture
def switcher(unitree_channels):
    procs = []

    def start(*args):
        p = subprocess.Popen(
            [sys.executable, str(PEER), str(unitree_channels), "lo", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(p)
        lines = [p.stdout.readline() for _ in range(1)]
        while "ready" not in lines[-1] and lines[-1] and len(lines) < 50:
            lines.append(p.stdout.readline())  # CycloneDDS prints a note about lo first
        assert "ready" in lines[-1], lines
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait(timeout=10)


def first_check(client, wait):
    # discovery: the first calls may time out until the request/response readers match
    result = {}

    def ok():
        try:
            result["info"] = client.check_mode()
            return True
        except MotionSwitcherError:
            return False

    assert wait(ok, timeout=20, poll=0.2)
    return result["info"]


def test_release_until_check_mode_reports_none(switcher, wait):
    switcher("--mode", "normal", "--releases-needed", "2", "--duration", "60")
    client = MotionSwitcherClient(timeout_s=0.5)
    info = first_check(client, wait)
    assert info.active and info.name == "normal"
    logs = []
    final = release_sport_mode(client, attempts=5, interval_s=0.05, log=logs.append)
    assert not final.active
    assert len(logs) == 2 and "normal" in logs[0]


def test_release_gives_up_with_a_clear_error(switcher, wait):
    switcher("--mode", "ai", "--releases-needed", "-1", "--duration", "60")
    client = MotionSwitcherClient(timeout_s=0.5)
    first_check(client, wait)
    with pytest.raises(MotionSwitcherError, match="'ai' still active after 3 releases"):
        release_sport_mode(client, attempts=3, interval_s=0.01)
