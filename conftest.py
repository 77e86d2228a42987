"""Test-session settings shared by every package's tests.

Each pytest process gets its own ROS 2 domain and its own Unitree (CycloneDDS) domain, both kept
on this host, before anything imports rclpy or the SDK. Child processes inherit them.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
_pid = os.getpid()
# Distinct per process; 0 (the robot) and 1 (Unitree's simulator convention) are never used.
os.environ["ROS_DOMAIN_ID"] = str(10 + _pid % 45)
os.environ.setdefault("MOE_LOCO_TEST_UNITREE_DOMAIN", str(60 + _pid % 40))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = "UDPv4"
os.environ["ROS_PYTHON_CHECK_FIELDS"] = "1"
os.environ.setdefault("AMENT_PREFIX_PATH", sys.prefix)
os.environ.pop("RMW_IMPLEMENTATION", None)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, poll: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return bool(predicate())


@pytest.fixture
def wait() -> Callable[..., bool]:
    return wait_until


class Spinner:
    """An rclpy executor spun in a daemon thread until :meth:`stop`, which ends the loop, joins
    the thread and only then shuts the executor down: shutting an executor down while another
    thread waits in it races (ros2/rclpy#968; seen here as an ``InvalidHandle`` in the spin
    thread of test_cmd_vel_sim)."""

    def __init__(self, executor: object, period_s: float = 0.05) -> None:
        self.executor = executor
        self._period = period_s
        self._running = threading.Event()
        self._running.set()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while self._running.is_set():
            self.executor.spin_once(timeout_sec=self._period)

    def stop(self) -> None:
        self._running.clear()
        self.thread.join(timeout=5.0)
        self.executor.shutdown()


@pytest.fixture
def spinner() -> Callable[[object], Spinner]:
    """``spinner(executor)``: spin it in a thread; call ``.stop()`` before destroying its nodes."""
    return Spinner


@pytest.fixture(scope="session")
def unitree_domain() -> int:
    """The CycloneDDS domain this test process uses with the Unitree SDK (on ``lo``)."""
    return int(os.environ["MOE_LOCO_TEST_UNITREE_DOMAIN"])


@pytest.fixture(scope="session")
def unitree_channels(unitree_domain: int) -> int:
    """Initialise the SDK's participant once per test process, on ``lo``."""
    from moe_loco_controller.io.lowlevel import init_channels

    init_channels(unitree_domain, "lo")
    return unitree_domain
