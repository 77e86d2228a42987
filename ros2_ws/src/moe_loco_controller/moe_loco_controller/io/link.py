"""The robot link the controller node talks to: real robot (or a simulator) over Unitree's DDS.

:class:`UnitreeLink` owns the SDK participant (one per process), the rt/lowstate reader, the
rt/lowcmd writer, the check for other rt/lowcmd publishers and the sport-mode release. It has no
ROS in it; the controller node only calls ``latest()``, ``send()``, ``faults()`` and ``close()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from moe_loco_controller.core.config import is_simulator_link
from moe_loco_controller.core.robot_state import JointCommand, RobotState
from moe_loco_controller.core.safety import Fault
from moe_loco_controller.io.lowlevel import (
    LowCmdPublisherMonitor,
    LowCmdWriter,
    LowStateReader,
    init_channels,
)
from moe_loco_controller.io.motion_switcher import (
    MotionSwitcherClient,
    MotionSwitcherError,
    release_sport_mode,
)


class LinkError(RuntimeError):
    """The link refuses to start (another controller, sport mode still active, no robot)."""


class UnitreeLink:
    """rt/lowstate in, rt/lowcmd out, through unitree_sdk2py on ``interface`` / ``domain_id``."""

    def __init__(
        self,
        domain_id: int,
        interface: str,
        release_sport_mode_first: bool = True,
        other_publisher_check_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] = print,
        verify_crc: bool = True,
    ) -> None:
        if not verify_crc and not is_simulator_link(interface, domain_id):
            raise LinkError(
                f"the rt/lowstate CRC check may be off only on a simulator link (lo, domain != 0), "
                f"not on {interface!r} domain {domain_id}"
            )
        init_channels(domain_id, interface or None)
        self._log = log
        self.monitor = LowCmdPublisherMonitor(own_writers=0)
        if other_publisher_check_s > 0:
            deadline = time.monotonic() + other_publisher_check_s
            while time.monotonic() < deadline and self.monitor.others == 0:
                time.sleep(0.02)
            if self.monitor.others:
                self.monitor.close()
                raise LinkError(
                    f"{self.monitor.others} other publisher(s) on rt/lowcmd: another controller "
                    "is driving the motors; stop it first"
                )
        self.sport_mode_active = False
        if release_sport_mode_first:
            try:
                info = release_sport_mode(MotionSwitcherClient(), log=log)
            except MotionSwitcherError as e:
                raise LinkError(f"could not release the built-in controller: {e}") from None
            self.sport_mode_active = info.active
        self.verify_crc = verify_crc
        if not verify_crc:
            log(
                f"rt/lowstate CRC check OFF on simulator link {interface} / domain {domain_id}: "
                "frames are used unchecked (link.crc: off)"
            )
        self.reader = LowStateReader(clock=clock, verify_crc=verify_crc)
        self.writer = LowCmdWriter()
        self.monitor.own_writers = 1

    def latest(self) -> RobotState | None:
        return self.reader.latest()

    def send(self, command: JointCommand) -> None:
        self.writer.send(command)

    @property
    def bad_crc(self) -> int:
        return self.reader.bad_crc

    @property
    def zero_crc(self) -> int:
        """Of the bad-CRC frames, those whose CRC field is 0 (what Unitree's simulator sends)."""
        return self.reader.zero_crc

    def faults(self) -> tuple[tuple[str, str], ...]:
        """Link-level faults for the safety latch (another rt/lowcmd publisher appeared)."""
        n = self.monitor.others
        if n:
            return ((Fault.OTHER_LOWCMD_PUBLISHER, f"{n} other publisher(s) on rt/lowcmd"),)
        return ()

    def close(self) -> None:
        self.writer.close()
        self.reader.close()
        self.monitor.close()
