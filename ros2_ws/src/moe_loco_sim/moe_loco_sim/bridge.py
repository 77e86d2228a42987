"""The sim bridge: a simulated Go2 that speaks the robot's own DDS topics (``moe-loco-sim``).

It steps MuJoCo at a fixed timestep (0.005 s, 200 Hz by default) in real time (or at a chosen
real-time factor), its motors applying the PD law of the latest good LowCmd_ from ``rt/lowcmd`` at
every physics step (:mod:`moe_loco_sim.motor`), and publishes LowState_ on ``rt/lowstate`` at
500 Hz like the robot, with its CRC (:mod:`moe_loco_sim.lowlevel_state`). Unitree's simulator
convention is the default: DDS domain 1 on ``lo``. Frames published between two physics steps
repeat the latest physics state with an advancing tick (``--timestep 0.002`` gives a fresh state
in every frame). Like the robot, it drops LowCmd_ frames with a bad CRC (and non-finite ones),
counting them. ``--actuation-delay-ms`` holds each accepted LowCmd_ back that long (sim time)
before the motors apply it, for sim-to-sim under a slower link or motor driver than this
machine's loopback. ``rt/wirelesscontroller`` messages (Unitree's gamepad topic), if any, become the
remote bytes of LowState_. With ``--report-every`` it prints its counters as one JSON object per
line on stdout (what tests and benchmarks read)::

    moe-loco-sim                                  # plane, Menagerie contacts, domain 1 on lo
    moe-loco-sim --terrain mixed --viewer         # the Table II runway, in MuJoCo's viewer
    moe-loco-sim --domain 42 --report-every 0.25 --duration 10
    moe-loco-sim --record-trajectory run.npz      # then: moe-loco-render run.npz (an MP4)
    moe-loco-sim --actuation-delay-ms 10          # every command acts 10 ms after it arrived
    moe-loco-sim --convention unitree_mujoco      # behave as Unitree's own MuJoCo simulator

``--convention unitree_mujoco`` reproduces what Unitree's ``unitree_mujoco`` (``simulate_python``)
does differently from the robot, so that our tests cover it (:mod:`moe_loco_sim.conventions`):
LowState_ once per physics step (200 Hz) with ``crc`` 0, a PD torque from the previous physics
step's sensor values, and that model's joint damping.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moe_loco_controller.core import go2
from moe_loco_controller.core.remote import pack_remote
from moe_loco_controller.core.robot_state import JointCommand
from moe_loco_controller.io import cdr
from moe_loco_sim.conventions import CONVENTIONS, convention
from moe_loco_sim.go2_model import CONTACT_PRESETS, DEFAULT_TIMESTEP
from moe_loco_sim.lowlevel_state import NEUTRAL_REMOTE, SimFrame, encode_lowstate
from moe_loco_sim.motor import command_from_lowcmd_values
from moe_loco_sim.robot import SPAWN_POSES, SimRobot
from moe_loco_sim.scene import build_scene
from moe_loco_sim.terrain import TERRAIN_NAMES
from moe_loco_sim.video import TrajectoryRecorder

TOPIC_WIRELESS = "rt/wirelesscontroller"

_WIRELESS = struct.Struct("<4fH")  # lx, ly, rx, ry, keys (WirelessController_ in CDR)


@dataclass(frozen=True)
class BridgeConfig:
    """How the bridge runs (the CLI's options)."""

    terrain: str = "plane"
    contact: str = "menagerie"
    timestep: float = DEFAULT_TIMESTEP
    spawn: str = "lie"
    seed: int = 0
    joint_noise: float = 0.0
    domain: int = go2.SIM_DOMAIN_ID
    interface: str = go2.SIM_INTERFACE
    lowstate_hz: float = 500.0
    rtf: float = 1.0
    """Sim seconds per wall second; 0: as fast as possible (one LowState_ per physics step)."""
    max_catchup_steps: int = 20
    """Physics steps per publish at most; further behind, the sim slows down (counted)."""
    actuation_delay_s: float = 0.0
    """An accepted LowCmd_ drives the motors from this long (sim time) after its arrival."""
    convention: str = "go2"
    """A name of :data:`~moe_loco_sim.conventions.CONVENTIONS`: ``go2`` (as the robot) or
    ``unitree_mujoco`` (as Unitree's simulator; ``lowstate_hz`` is then the physics rate)."""

    def __post_init__(self) -> None:
        convention(self.convention)  # ValueError naming the known ones
        if not 0.0 < self.timestep <= DEFAULT_TIMESTEP:
            raise ValueError(f"timestep must be in (0, {DEFAULT_TIMESTEP}] s (>= 200 Hz)")
        if not 1.0 <= self.lowstate_hz <= 5000.0:
            raise ValueError(f"lowstate_hz must be in 1..5000, got {self.lowstate_hz}")
        if not (math.isfinite(self.rtf) and self.rtf >= 0.0):
            raise ValueError(f"rtf must be a finite number >= 0, got {self.rtf}")
        if not 0 <= self.domain <= 232:
            raise ValueError(f"domain must be in 0..232, got {self.domain}")
        if not (math.isfinite(self.actuation_delay_s) and 0.0 <= self.actuation_delay_s <= 1.0):
            raise ValueError(
                f"actuation delay must be within 0..1000 ms, got {self.actuation_delay_s * 1e3}"
            )


class LowCmdInput:
    """What the robot does with incoming rt/lowcmd frames: check, count, keep the latest good one.

    A frame is dropped (and counted) when it does not decode (``malformed``), its CRC is wrong
    (``bad_crc``) or a motor value is not finite (``non_finite``). No DDS here: :meth:`handle`
    takes the serialised bytes.
    """

    def __init__(self) -> None:
        self.received = 0
        self.accepted = 0
        self.bad_crc = 0
        self.malformed = 0
        self.non_finite = 0
        self.latest: JointCommand | None = None

    def handle(self, data: bytes) -> JointCommand | None:
        """The command in ``data`` if the robot would accept it, else None (counted)."""
        self.received += 1
        try:
            values = cdr.decode_lowcmd(data)
        except (ValueError, struct.error):
            self.malformed += 1
            return None
        if cdr.lowcmd_values_crc(values) != values[cdr.LC_CRC]:
            self.bad_crc += 1
            return None
        command = command_from_lowcmd_values(values)
        if not command.is_finite():
            self.non_finite += 1
            return None
        self.accepted += 1
        self.latest = command
        return command

    def counts(self) -> dict[str, int]:
        return {
            "lowcmd_received": self.received,
            "lowcmd_accepted": self.accepted,
            "lowcmd_bad_crc": self.bad_crc,
            "lowcmd_malformed": self.malformed,
            "lowcmd_non_finite": self.non_finite,
        }


def remote_from_wireless(data: bytes) -> bytes:
    """LowState_'s 40 remote bytes from a serialised WirelessController_ (lx, ly, rx, ry, keys)."""
    lx, ly, rx, ry, keys = _WIRELESS.unpack_from(data, 4)
    return pack_remote(keys, np.array([lx, ly, rx, ry, 0.0]))


class DdsPorts:
    """The bridge's DDS side through unitree_sdk2py's participant: LowState_ out, LowCmd_ and
    WirelessController_ in, all as raw serialised bytes (the fast CDR layouts, no IDL objects)."""

    def __init__(self, domain: int, interface: str, wireless: bool = True) -> None:
        from cyclonedds._clayer import ddspy_take, ddspy_write
        from cyclonedds.core import Policy, Qos
        from cyclonedds.pub import DataWriter
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic

        from moe_loco_controller.io.lowlevel import _participant, init_channels
        from moe_loco_controller.io.unitree_sdk import sdk

        init_channels(domain, interface or None)
        participant = _participant()
        self._take, self._write = ddspy_take, ddspy_write
        self._state_topic = Topic(participant, go2.TOPIC_LOWSTATE, sdk.LowState_)
        self._state_writer = DataWriter(participant, self._state_topic)
        self._cmd_topic = Topic(participant, go2.TOPIC_LOWCMD, sdk.LowCmd_)
        self._cmd_reader = DataReader(
            participant, self._cmd_topic, qos=Qos(Policy.History.KeepLast(64))
        )
        self._wireless_reader = None
        if wireless:
            from unitree_sdk2py.idl.unitree_go.msg.dds_ import WirelessController_

            self._wireless_topic = Topic(participant, TOPIC_WIRELESS, WirelessController_)
            self._wireless_reader = DataReader(
                participant, self._wireless_topic, qos=Qos(Policy.History.KeepLast(1))
            )

    def _take_all(self, reader: Any, n: int) -> list[bytes]:
        ret = self._take(reader._ref, n)
        if isinstance(ret, int):
            raise RuntimeError(f"DDS take failed with error {ret}")
        return [data for data, info in ret if info.valid_data]

    def take_lowcmd(self) -> list[bytes]:
        return self._take_all(self._cmd_reader, 64)

    def take_wireless(self) -> list[bytes]:
        return [] if self._wireless_reader is None else self._take_all(self._wireless_reader, 8)

    def write_lowstate(self, data: bytes) -> None:
        ret = self._write(self._state_writer._ref, data)
        if ret < 0:
            raise RuntimeError(f"rt/lowstate write failed with DDS error {ret}")

    def close(self) -> None:
        self._state_writer = self._cmd_reader = self._wireless_reader = None  # type: ignore[assignment]


class SimBridge:
    """A :class:`~moe_loco_sim.robot.SimRobot` behind DDS ports (see the module docstring).

    ``ports`` needs ``take_lowcmd()``, ``take_wireless()`` and ``write_lowstate(bytes)``
    (:class:`DdsPorts`, or a fake in tests).
    """

    def __init__(
        self,
        config: BridgeConfig,
        ports: Any,
        robot: SimRobot | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = c = config
        self.convention = conv = convention(c.convention)
        if robot is None:
            scene = conv.apply(build_scene(c.terrain, c.contact, c.timestep))
            robot = SimRobot(scene, pd_delay_steps=conv.pd_delay_steps)
            robot.reset(c.spawn, c.joint_noise, np.random.default_rng(c.seed))
        self.robot = robot
        self.ports = ports
        self.clock = clock
        self.lowcmd = LowCmdInput()
        self.remote = NEUTRAL_REMOTE
        self.frame: SimFrame = robot.frame()
        self.lowstate_sent = 0
        self.lag_events = 0
        self._wall0: float | None = None
        self._sim0 = robot.time
        self._sent0 = 0
        self._pending: deque[tuple[float, JointCommand]] = deque()
        """Accepted commands waiting out the actuation delay: (sim time due, command)."""

    @property
    def lowstate_hz(self) -> float:
        """The rt/lowstate rate this bridge publishes at (real time)."""
        if self.convention.lowstate_at_physics_rate:
            return 1.0 / self.robot.timestep
        return self.config.lowstate_hz

    # ------------------------------------------------------------------ one tick
    def poll_inputs(self) -> None:
        """Take every LowCmd_ that arrived; the newest good one drives the motors from now on."""
        delay = self.config.actuation_delay_s
        for data in self.ports.take_lowcmd():
            command = self.lowcmd.handle(data)
            if command is None:
                continue
            if delay > 0.0:
                self._pending.append((self.robot.time + delay, command))
            else:
                self.robot.command = command
        for data in self.ports.take_wireless():
            with contextlib.suppress(struct.error):  # a malformed remote message is ignored
                self.remote = remote_from_wireless(data)

    def physics_step(self) -> None:
        robot = self.robot
        pending = self._pending
        while pending and pending[0][0] <= robot.time + 1e-9:
            robot.command = pending.popleft()[1]
        robot.begin_step()
        self.frame = robot.frame()
        robot.end_step()

    def publish(self, tick: int) -> None:
        data = encode_lowstate(self.frame, tick, self.remote, crc=self.convention.lowstate_crc)
        self.ports.write_lowstate(data)
        self.lowstate_sent += 1

    # ------------------------------------------------------------------ the loop
    def run(
        self,
        duration: float = 0.0,
        stop: threading.Event | None = None,
        report: Callable[[dict[str, Any]], None] | None = None,
        report_every: float = 0.0,
        on_tick: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """Run until ``duration`` sim seconds have passed (0: until ``stop`` is set).

        ``report(stats)`` is called every ``report_every`` wall seconds and at the end;
        ``on_tick()`` after each publish (the viewer's sync), returning False stops the run.
        Returns the final :meth:`stats`.
        """
        c, robot = self.config, self.robot
        stop = stop or threading.Event()
        dt = robot.timestep
        period = dt if self.convention.lowstate_at_physics_rate else 1.0 / c.lowstate_hz
        sim_start = robot.time
        wall0 = self.clock()
        self._wall0, self._sim0, self._sent0 = wall0, sim_start, self.lowstate_sent
        sim_origin = wall0  # wall time at which the sim clock read sim_start (shifts on lag)
        next_report = wall0 + report_every
        k = 0
        last_report: tuple[float, int] = (wall0, self.lowstate_sent)
        while not stop.is_set():
            if duration > 0.0 and robot.time - sim_start >= duration - 1e-9:
                break
            now = self.clock()
            self.poll_inputs()
            if c.rtf > 0.0:
                target = sim_start + (now - sim_origin) * c.rtf
                n = 0
                while robot.time + dt <= target + 1e-9 and n < c.max_catchup_steps:
                    self.physics_step()
                    n += 1
                if robot.time + dt <= target + 1e-9:  # too far behind: slow the sim clock down
                    self.lag_events += 1
                    sim_origin += (target - robot.time) / c.rtf
                    target = robot.time
                tick = round(target * 1000.0)
            else:
                self.physics_step()
                tick = round(robot.time * 1000.0)
            self.publish(tick)
            if on_tick is not None and not on_tick():
                break
            if report is not None and report_every > 0.0 and now >= next_report:
                stats = self.stats(now)
                w, n_sent = last_report
                stats["lowstate_hz"] = (self.lowstate_sent - n_sent) / max(now - w, 1e-9)
                last_report = (now, self.lowstate_sent)
                report(stats)
                next_report += report_every
                if next_report < now:
                    next_report = now + report_every
            if c.rtf > 0.0:
                k += 1
                deadline = wall0 + k * period
                delay = deadline - self.clock()
                if delay > 0.0:
                    time.sleep(delay)
                elif delay < -5 * period:  # far behind (a stalled machine): do not burst
                    k = int((self.clock() - wall0) / period)
        final = self.stats()
        if report is not None:
            report(final)
        return final

    # ------------------------------------------------------------------ telemetry
    def stats(self, now: float | None = None) -> dict[str, Any]:
        """Counters and the robot's truth, JSON-ready."""
        now = self.clock() if now is None else now
        robot, cmd = self.robot, self.robot.command
        wall = 0.0 if self._wall0 is None else now - self._wall0
        sim = robot.time - self._sim0
        pos = robot.base_pos()
        return {
            "t": now,
            "wall_s": wall,
            "sim_time": robot.time,
            "rtf": sim / wall if wall > 0 else 0.0,
            "physics_steps": robot.steps,
            "lowstate_sent": self.lowstate_sent,
            "lowstate_hz_avg": (self.lowstate_sent - self._sent0) / wall if wall > 0 else 0.0,
            **self.lowcmd.counts(),
            "lag_events": self.lag_events,
            "kp": np.asarray(cmd.kp, dtype=float).tolist(),
            "kd": np.asarray(cmd.kd, dtype=float).tolist(),
            "q": robot.joint_pos().tolist(),
            "tau": robot.tau.tolist(),
            "base_pos": pos.tolist(),
            "upright": robot.upright(),
            "nose_up": robot.nose_up(),
            "convention": self.config.convention,
        }


# ---------------------------------------------------------------------- the CLI
def _has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    p = argparse.ArgumentParser(prog="moe-loco-sim", description=doc.split("\n")[0])
    p.add_argument("--terrain", default="plane", choices=TERRAIN_NAMES)
    p.add_argument("--contact", default="menagerie", choices=sorted(CONTACT_PRESETS))
    p.add_argument(
        "--timestep", type=float, default=DEFAULT_TIMESTEP, help="physics step [s] (<= 0.005)"
    )
    p.add_argument("--spawn", default="lie", choices=sorted(SPAWN_POSES), help="start pose")
    p.add_argument("--seed", type=int, default=0, help="seed of --joint-noise")
    p.add_argument(
        "--joint-noise", type=float, default=0.0, help="start pose perturbation sd [rad]"
    )
    p.add_argument("--domain", type=int, default=go2.SIM_DOMAIN_ID, help="DDS domain (1)")
    p.add_argument("--interface", default=go2.SIM_INTERFACE, help="network interface (lo)")
    p.add_argument(
        "--allow-robot-domain",
        action="store_true",
        help="allow domain 0, the real robot's (a sim there can confuse a robot's controller)",
    )
    p.add_argument(
        "--lowstate-hz", type=float, default=500.0, help="rt/lowstate rate (500; see --convention)"
    )
    p.add_argument(
        "--convention",
        default="go2",
        choices=sorted(CONVENTIONS),
        help="go2: as the robot (default); unitree_mujoco: as Unitree's simulator (LowState_ at "
        "the physics rate with crc 0, PD from the previous step's sensors, its joint damping)",
    )
    p.add_argument(
        "--actuation-delay-ms",
        type=float,
        default=0.0,
        help="the motors apply each LowCmd_ this long (sim time) after it arrived (0)",
    )
    p.add_argument(
        "--rtf", type=float, default=1.0, help="real-time factor (1); 0: as fast as possible"
    )
    p.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many sim seconds (0: never)"
    )
    p.add_argument("--viewer", action="store_true", help="show MuJoCo's viewer (needs a display)")
    p.add_argument(
        "--report-every",
        type=float,
        default=0.0,
        help="print the counters as a JSON line every this many seconds (0: only at the end)",
    )
    p.add_argument(
        "--record-trajectory",
        type=Path,
        metavar="NPZ",
        help="save the robot's trajectory here on exit, for an offscreen video "
        "(python -m moe_loco_sim.video NPZ)",
    )
    p.add_argument("--record-fps", type=float, default=30.0, help="trajectory frames per sim s")
    p.add_argument("--no-wireless", action="store_true", help=f"do not read {TOPIC_WIRELESS}")
    p.add_argument(
        "--exit-with-parent", action="store_true", help="stop when the parent process exits"
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    if a.domain == go2.ROBOT_DOMAIN_ID and not a.allow_robot_domain:
        print(
            "moe-loco-sim: domain 0 is the real robot's; use the simulator's (1, the default), "
            "or --allow-robot-domain if you really mean it",
            file=sys.stderr,
        )
        return 2
    if a.viewer and not _has_display():
        print(
            "moe-loco-sim: --viewer needs a display (DISPLAY/WAYLAND_DISPLAY is not set); "
            "run without --viewer, or on a machine with a screen",
            file=sys.stderr,
        )
        return 2
    try:
        config = BridgeConfig(
            terrain=a.terrain,
            contact=a.contact,
            timestep=a.timestep,
            spawn=a.spawn,
            seed=a.seed,
            joint_noise=a.joint_noise,
            domain=a.domain,
            interface=a.interface,
            lowstate_hz=a.lowstate_hz,
            rtf=a.rtf,
            actuation_delay_s=a.actuation_delay_ms / 1e3,
            convention=a.convention,
        )
    except ValueError as e:
        print(f"moe-loco-sim: {e}", file=sys.stderr)
        return 2
    ports = DdsPorts(config.domain, config.interface, wireless=not a.no_wireless)
    bridge = SimBridge(config, ports)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    parent = os.getppid()

    def report(stats: dict[str, Any]) -> None:
        print(json.dumps(stats), flush=True)
        if a.exit_with_parent and os.getppid() != parent:
            stop.set()

    recorder = None
    if a.record_trajectory is not None:
        recorder = TrajectoryRecorder(bridge.robot, a.record_fps, config.terrain, config.contact)
    viewer = None
    if a.viewer:
        import mujoco.viewer

        viewer = mujoco.viewer.launch_passive(bridge.robot.model, bridge.robot.data)
    next_sync = [0.0]

    def on_tick() -> bool:
        if recorder is not None:
            recorder.sample()
        if viewer is not None:
            now = time.monotonic()
            if now >= next_sync[0]:
                next_sync[0] = now + 1.0 / 60.0
                if not viewer.is_running():
                    return False
                viewer.sync()
        return True

    print(
        f"moe-loco-sim: Go2 on {config.terrain} ({config.contact} contacts, physics "
        f"{1.0 / config.timestep:.0f} Hz), rt/lowstate at "
        f"{bridge.lowstate_hz:.0f} Hz on "
        f"domain {config.domain} / {config.interface}, rtf {config.rtf:g}, convention "
        f"{config.convention}",
        file=sys.stderr,
        flush=True,
    )
    exit_watch = None
    if a.exit_with_parent and a.report_every <= 0:
        exit_watch = threading.Thread(
            target=_watch_parent, args=(parent, stop), daemon=True, name="exit_with_parent"
        )
        exit_watch.start()
    try:
        bridge.run(
            a.duration, stop, report, a.report_every, on_tick if recorder or viewer else None
        )
    finally:
        if viewer is not None:
            viewer.close()
        ports.close()
        if recorder is not None:
            recorder.save(a.record_trajectory)
    return 0


def _watch_parent(parent: int, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        if os.getppid() != parent:
            stop.set()


if __name__ == "__main__":
    sys.exit(main())
