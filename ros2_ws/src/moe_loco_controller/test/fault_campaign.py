"""The fault campaign over real DDS on ``lo``: the controller node on its Unitree link against
``peers/fault_robot_peer.py``, which misbehaves on request and judges every LowCmd_ it receives.

Each scenario brings the controller to RUN, injects one fault, waits for the first damping
LowCmd_ at the robot, presses the e-stop while the fault lasts, then clears it and resets. The
figures per scenario: the faults the controller latched, the time from the injection to the first
damping LowCmd_ the robot received (ms and control periods), and that time less the periods the
fault needs before it can be seen at all (``detectable_after``: the stale limit for a silent or
frozen robot, the watchdog for a stalled or dead loop, 0 otherwise). Over the whole campaign the
robot counts the LowCmd_ that were non-finite, out of bounds (the command check) or had a bad CRC.

Used by ``test_fault_campaign.py`` (which asserts the figures) and ``benchmarks/bench_faults.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PEER = Path(__file__).parent / "peers" / "fault_robot_peer.py"
STAND_S = 0.5


class ThreadKilled(SystemExit):
    """Ends the control thread as an uncatchable fault would (threads ignore SystemExit)."""


@dataclass
class Figure:
    scenario: str
    faults: list[str]
    damp_ms: float
    damp_periods: float
    detectable_after: float
    estop_latched: bool
    wire_damping_during_estop: bool

    @property
    def after_detectable_periods(self) -> float:
        return self.damp_periods - self.detectable_after

    def line(self) -> str:
        return (
            f"{self.scenario:10s} faults={','.join(self.faults) or '-':32s} "
            f"first_damping_lowcmd={self.damp_ms:7.1f} ms ({self.damp_periods:4.1f} periods; "
            f"{self.after_detectable_periods:4.1f} after detectable) "
            f"estop={'latched' if self.estop_latched else 'n/a (loop dead)'} "
            f"wire_damping={self.wire_damping_during_estop}"
        )


@dataclass
class Campaign:
    figures: list[Figure] = field(default_factory=list)
    wire: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        w = self.wire
        return (
            f"fault_campaign scenarios={len(self.figures)} lowcmd={w.get('count', 0)} "
            f"non_finite={w.get('non_finite', -1)} out_of_bounds={w.get('out_of_bounds', -1)} "
            f"bad_crc={w.get('bad_crc', -1)} max_damp_after_detectable_periods="
            f"{max((f.after_detectable_periods for f in self.figures), default=0):.2f}"
        )


class Peer:
    def __init__(self, domain: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(PEER), str(domain), "lo", "--rate", "500", "--duration", "300"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.last: dict[str, Any] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                report = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                self.last = report

    def report(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.last)

    def fault(self, name: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


def make_faulty_node_class() -> type:
    from moe_loco_controller.nodes.controller_node import ControllerNode

    class FaultyNode(ControllerNode):
        """The controller node with two injectable faults of its control thread."""

        inject = ""
        stall_s = 0.5

        def _control_tick(self, lateness: float) -> None:
            what, self.inject = self.inject, ""
            if what == "stall":
                time.sleep(self.stall_s)  # blocked: a lock, a page fault storm, a hung driver
            elif what == "kill":
                raise ThreadKilled()
            super()._control_tick(lateness)

    return FaultyNode


class Operator:
    """A joystick at 50 Hz whose fields the campaign changes."""

    def __init__(self, node: Any, namespace: str) -> None:
        from moe_loco_msgs.msg import LocoCommand

        self.msg_type = LocoCommand
        self.pub = node.create_publisher(LocoCommand, f"{namespace}/command", 10)
        self.fields: dict[str, Any] = {"deadman": True}
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.pub.publish(self.msg_type(**self.fields))
            time.sleep(0.02)

    def set(self, **fields: Any) -> None:
        self.fields = {"deadman": True, **fields}


def _wait(predicate: Any, timeout: float, poll: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(poll)
    return bool(predicate())


def run_campaign(
    domain: int, policy: Path, log: Any = print, config: dict[str, Any] | None = None
) -> Campaign:
    """Run every scenario; the caller has initialised rclpy (its own ROS domain). ``config``:
    ``Config.replace`` keys over the packaged configuration (e.g. ``SHARED_MACHINE_TIMING``)."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from moe_loco_controller.core.config import load_config
    from moe_loco_controller.io.link import UnitreeLink
    from moe_loco_msgs.msg import LocoCommand

    cfg = load_config().replace(
        **{
            "link.interface": "lo",
            "link.domain_id": domain,
            "link.release_sport_mode": False,
            "link.other_publisher_check_s": 0.0,
            "control.stand_duration_s": STAND_S,
            **(config or {}),
        }
    )
    dt = 0.02
    stale_periods = cfg.control.safety.stale_state_periods
    peer = Peer(domain)
    link = UnitreeLink(domain, "lo", False, 0.0)
    node = make_faulty_node_class()(cfg, policy, link)
    dt = node.core.control_dt
    probe = Node("fault_campaign_operator")
    op = Operator(probe, cfg.namespace)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    ex.add_node(probe)
    spinning = threading.Event()
    spinning.set()

    def spin() -> None:
        while spinning.is_set():
            ex.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    campaign = Campaign()
    mode = lambda: node.core.mode.name  # noqa: E731
    R = LocoCommand  # noqa: N806

    def to_run() -> None:
        if mode() in ("STAND", "RUN"):
            assert _wait(lambda: (op.set(request=R.REQUEST_DAMP), mode() == "DAMP")[1], 10)
        if mode() == "DAMP":
            assert _wait(lambda: (op.set(request=R.REQUEST_RESET), mode() == "PASSIVE")[1], 10), (
                f"reset refused: {node.core.latched}"
            )
        assert _wait(lambda: (op.set(request=R.REQUEST_STAND), mode() == "STAND")[1], 10), (
            f"stand refused: {node.last_result.events if node.last_result else None}"
        )
        op.set()
        assert _wait(lambda: node.core.stand_progress(time.monotonic()) >= 1.0, 10), (
            f"stand did not finish: {mode()} {node.core.latched}"
        )
        assert _wait(lambda: (op.set(request=R.REQUEST_RUN), mode() == "RUN")[1], 10), (
            f"run refused: {node.core.latched}"
        )
        op.set()

    def scenario(name: str, inject: Any, clear: Any, detectable_after: float) -> None:
        to_run()
        time.sleep(0.2)
        t0 = inject()
        ok = _wait(lambda: (peer.report().get("first_damp_t") or 0) > t0, 5.0)
        rep = peer.report()
        assert ok, f"{name}: no damping LowCmd_ within 5 s: {rep}"
        t_damp = rep["first_damp_t"]
        alive = name != "kill"
        op.set(estop=True)  # the e-stop while the fault lasts
        estop_latched = _wait(lambda: "estop" in node.core.latched, 2.0) if alive else False
        time.sleep(0.1)
        wire_damping = peer.report().get("last_kp") == 0.0
        faults = list(node.core.latched)
        op.set()
        clear()
        f = Figure(
            name,
            faults,
            (t_damp - t0) * 1e3,
            (t_damp - t0) / dt,
            detectable_after,
            estop_latched,
            wire_damping,
        )
        campaign.figures.append(f)
        log(f.line())

    def peer_fault(fault: str) -> Any:
        def inject() -> float:
            before = peer.report().get("fault_t", 0.0)
            peer.fault(fault)
            assert _wait(lambda: peer.report().get("fault_t", 0.0) > before, 5.0)
            return peer.report()["fault_t"]

        return inject

    def marked(inject: Any) -> Any:
        def run() -> float:
            peer_fault("mark")()
            return inject()

        return run

    def node_fault(what: str) -> Any:
        def inject() -> float:
            node.inject = what
            time.sleep(0.001)
            return node._out[1] or time.monotonic()  # the last fresh step's time

        return marked(inject)

    def peer_clear() -> None:
        peer.fault("none")
        time.sleep(0.3)

    previous_hook = threading.excepthook

    def hook(args: Any) -> None:  # the injected kill is expected; anything else is reported
        if not issubclass(args.exc_type, ThreadKilled):
            previous_hook(args)

    threading.excepthook = hook
    try:
        assert _wait(lambda: node.latest_state() is not None, 15.0), "no LowState_ from the peer"
        node.start()
        scenario("estop", marked(lambda: (op.set(estop=True), time.monotonic())[1]), op.set, 1.0)
        for fault, after in (
            ("stop", stale_periods),
            ("badcrc", stale_periods),
            ("duplicate", stale_periods),
            ("stale", 0.0),
            ("backwards", 0.0),
        ):
            scenario(fault, peer_fault(fault), peer_clear, after)
        # a flood is no fault by itself: the loop must stay up, or damp with a fault named
        to_run()
        peer_fault("flood")()
        time.sleep(1.0)
        flood_mode, flood_faults = mode(), list(node.core.latched)
        peer_clear()
        log(f"flood      mode after 1 s of 10 kHz LowState_: {flood_mode} {flood_faults}")
        campaign.wire["flood_mode"] = flood_mode
        scenario(
            "nan_policy",
            marked(lambda: (op.set(vx=1.0), time.monotonic())[1]),
            op.set,
            1.0,  # the command reaches the next step
        )
        scenario(
            "stall",
            node_fault("stall"),
            lambda: time.sleep(node.stall_s),
            cfg.link.watchdog_periods,
        )
        scenario("kill", node_fault("kill"), lambda: None, cfg.link.watchdog_periods)
        n0 = peer.report()["damping"]
        time.sleep(0.3)
        campaign.wire["damping_after_kill"] = peer.report()["damping"] - n0
        campaign.wire.update(peer.report())
    finally:
        threading.excepthook = previous_hook
        op.stop.set()
        node.stop()
        spinning.clear()
        spinner.join(timeout=5)
        ex.shutdown()
        node.destroy_node()
        probe.destroy_node()
        link.close()
        peer.kill()
    log(campaign.summary())
    return campaign
