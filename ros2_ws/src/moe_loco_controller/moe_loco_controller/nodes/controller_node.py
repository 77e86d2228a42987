"""The controller node: the control core on a 50 Hz deadline loop, the robot link, ROS I/O.

It owns timers (two deadline threads), topics and services, and nothing else:

- robot state from the Unitree link (rt/lowstate) or, for replay, from ``<ns>/robot_state``;
- ``<ns>/command`` (LocoCommand) in, and ``cmd_vel`` (``geometry_msgs/Twist``, or
  ``TwistStamped`` with ``cmd_vel.stamped``) as a velocity source beside it under the rules of
  :mod:`~moe_loco_controller.core.velocity_source` (a Twist never changes mode, never starts the
  robot, moves it only while the operator holds the deadman, and a stale one gives zero);
  ``<ns>/status``, ``<ns>/joint_command`` and (with the
  Unitree link) ``<ns>/robot_state`` out, every control step;
- LowCmd_ streamed to rt/lowcmd at ``link.command_rate_hz``, repeating the latest PD targets
  between control steps (zero torque until the first step) while they are fresh: once the newest
  step is older than ``link.watchdog_periods`` control periods the stream itself sends damping
  and the core latches ``control_stalled``;
- the ROS conventions, for RViz, Foxglove and robot_state_publisher: ``joint_states``
  (``sensor_msgs/JointState``, the Go2 URDF's joint names) and ``imu/data`` (``sensor_msgs/Imu``)
  every control step with a robot state, ``<ns>/estimated_velocity`` (``TwistStamped``, the
  estimator's base velocity, in RUN only) and ``/diagnostics`` once a second
  (:mod:`~moe_loco_controller.core.diagnostics`);
- services ``<ns>/set_expert_scale`` and ``<ns>/set_gait``: bad requests are refused with a
  reason and change nothing.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import Imu, JointState

from moe_loco_controller.core.config import Config, LinkConfig
from moe_loco_controller.core.controller import ControlCore, Mode, OperatorCommand, StepResult
from moe_loco_controller.core.diagnostics import (
    ERROR,
    DiagnosticEntry,
    LinkHealth,
    controller_diagnostics,
)
from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_controller.core.robot_state import JointCommand, RobotState
from moe_loco_controller.core.safety import Fault
from moe_loco_controller.core.timing import DeadlineLoop, LoopStats, naive_loop
from moe_loco_controller.core.velocity_source import TwistCommand, merge_velocity
from moe_loco_controller.nodes.bringup import default_policy_dirs, find_policy
from moe_loco_controller.nodes.messages import (
    command_from_msg,
    diagnostics_to_msg,
    imu_to_msg,
    joint_command_to_msg,
    joint_state_to_msg,
    robot_state_from_msg,
    robot_state_to_msg,
    status_to_msg,
    velocity_to_msg,
)
from moe_loco_controller.nodes.parameters import declare_config, watch_runtime_parameters
from moe_loco_msgs.msg import ControllerStatus as StatusMsg
from moe_loco_msgs.msg import JointCommand as JointCommandMsg
from moe_loco_msgs.msg import LocoCommand
from moe_loco_msgs.msg import RobotState as RobotStateMsg
from moe_loco_msgs.srv import SetExpertScale, SetGait


class ControllerNode(Node):
    """See the module docstring. ``link``: a started :class:`~..io.link.UnitreeLink`, or None to
    read the robot state from ``<ns>/robot_state`` (replay: nothing is sent to a robot).

    ``config`` gives the defaults of the node's ROS parameters; what the node was given with
    ``--params-file`` / ``-p`` overrides them, validated the same way (:class:`ConfigError`
    naming the parameter). ``policy_path`` None: the parameter ``policy`` (else the newest under
    ``policies/``). ``link_factory``: with no ``link`` and ``link.source`` unitree, called with
    the resolved ``link`` section to make one (what ``moe-loco-bringup`` does)."""

    def __init__(
        self,
        config: Config,
        policy_path: str | Path | None,
        link: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
        node_name: str = "moe_loco_controller",
        link_factory: Callable[[LinkConfig], Any] | None = None,
    ) -> None:
        super().__init__(node_name)
        try:
            config = declare_config(self, config, "controller")
            if policy_path is None:
                policy_path = find_policy(config.policy, default_policy_dirs())
            self.policy = PolicyRuntime(policy_path, device=config.device)
            if link is None and link_factory is not None and config.link.source == "unitree":
                link = link_factory(config.link)
        except BaseException:
            self.destroy_node()
            raise
        self.config = config
        self.link = link
        self.clock = clock
        self.core = ControlCore(self.policy, config.control)
        self.policy_name = Path(policy_path).name
        self._lock = threading.Lock()  # the core and the policy: control thread vs services
        self._operator: OperatorCommand | None = None
        self._pending_request = 0  # a mode request waits for the next tick, never overwritten
        self._twist: TwistCommand | None = None
        self.velocity_source = "none"
        """Where the last step's velocity came from: operator, cmd_vel or none."""
        # the latest mirror frame and its message's header stamp, replaced as one (the status
        # names the stamp of the frame a step used, so a bag pairs them exactly)
        self._mirror: tuple[RobotState, Time] | None = None
        # the loop's output and when it was produced (None: no step yet), read by the stream
        self._out: tuple[JointCommand, float | None] = (JointCommand.zero_torque(), None)
        self._damping = JointCommand.damping(config.control.damp_kd)
        self._node_faults: dict[str, str] = {}  # faults for the core's next step
        self._fault_lock = threading.Lock()
        self._hold_damping = False  # the watchdog tripped: damping until a step has seen it
        self.watchdog_limit_s = config.link.watchdog_periods * self.core.control_dt
        self.watchdog_trips: list[tuple[float, float]] = []
        """(when, age of the newest step then) of each watchdog trip [s]."""
        self.stream_errors = 0
        self.tick_errors = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stream_thread: threading.Thread | None = None  # started before the control loop
        self._last_tick: float | None = None
        self.loop_stats = LoopStats()
        self.stream_stats = LoopStats()
        self.last_result: StepResult | None = None
        self.compute_times: collections.deque[float] = collections.deque(maxlen=200_000)
        # (period, lateness, compute) of the ticks since the last /diagnostics message
        self._diag_window: collections.deque[tuple[float, float, float]] = collections.deque(
            maxlen=1000
        )
        self._diag_counts = (0, 0, 0, 0)  # overruns, bad CRC, watchdog trips, crc-0 frames then

        ns = config.namespace
        self.status_pub = self.create_publisher(StatusMsg, f"{ns}/status", 10)
        self.joint_pub = self.create_publisher(JointCommandMsg, f"{ns}/joint_command", 10)
        if link is None:
            self.create_subscription(RobotStateMsg, f"{ns}/robot_state", self._on_state, 10)
            self.state_pub = None
        else:
            self.state_pub = self.create_publisher(RobotStateMsg, f"{ns}/robot_state", 10)
        self.create_subscription(LocoCommand, f"{ns}/command", self._on_command, 10)
        cv = config.cmd_vel
        if cv.stamped:
            self.create_subscription(TwistStamped, cv.topic, self._on_twist_stamped, 10)
        else:
            self.create_subscription(Twist, cv.topic, self._on_twist, 10)
        self.joint_state_pub = self.create_publisher(JointState, "joint_states", 10)
        self.imu_pub = self.create_publisher(Imu, "imu/data", 10)
        self.velocity_pub = self.create_publisher(TwistStamped, f"{ns}/estimated_velocity", 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self.publish_diagnostics)
        self.create_service(SetExpertScale, f"{ns}/set_expert_scale", self._on_set_scale)
        self.create_service(SetGait, f"{ns}/set_gait", self._on_set_gait)
        watch_runtime_parameters(self, "controller", lambda: self.config, self._apply_config)
        # also warms rclpy's logging up: its first call costs ~15 ms, too long inside a tick
        self.get_logger().info(
            f"policy {self.policy_name}: {1.0 / self.core.control_dt:.0f} Hz; the LowCmd_ "
            f"stream damps after {self.watchdog_limit_s * 1e3:.0f} ms without a step"
        )

    # ------------------------------------------------------------------ ROS callbacks
    def _apply_config(self, config: Config) -> None:
        """A validated run-time parameter change (only RUNTIME_PARAMETERS reach here)."""
        with self._lock:
            self.core.config = config.control
            self.config = config

    def _on_command(self, msg: LocoCommand) -> None:
        cmd = command_from_msg(msg, self.clock())
        if cmd.request:
            self._pending_request = cmd.request
        self._operator = cmd

    def _on_twist(self, msg: Twist) -> None:
        # stamped on arrival: a sender's clock may not be ours (as for the robot state)
        self._twist = TwistCommand(
            float(msg.linear.x), float(msg.linear.y), float(msg.angular.z), self.clock()
        )

    def _on_twist_stamped(self, msg: TwistStamped) -> None:
        self._on_twist(msg.twist)

    def _on_state(self, msg: RobotStateMsg) -> None:
        self._mirror = (robot_state_from_msg(msg, self.clock()), msg.header.stamp)

    def _on_set_scale(
        self, req: SetExpertScale.Request, res: SetExpertScale.Response
    ) -> SetExpertScale.Response:
        weights = list(req.weights)
        with self._lock:
            try:
                if weights and req.preset:
                    raise ValueError("give either weights or a preset name, not both")
                if req.preset:
                    self.policy.set_expert_preset(req.preset)
                    res.message = f"preset {req.preset!r} applied"
                elif weights:
                    self.policy.set_expert_scale(weights)
                    res.message = "weights applied"
                else:
                    raise ValueError("give weights (one per expert) or a preset name")
                res.success = True
            except ValueError as e:
                res.success = False
                res.message = str(e)
            res.scale = self.policy.expert_scale.tolist()
        self.get_logger().info(f"set_expert_scale: {res.message}")
        return res

    def _on_set_gait(self, req: SetGait.Request, res: SetGait.Response) -> SetGait.Response:
        with self._lock:
            try:
                self.core.set_gait(req.gait, self.clock())
                res.success = True
                res.message = f"gait {self.core.metadata.gaits[self.core.gait]}"
            except ValueError as e:
                res.success = False
                res.message = str(e)
            res.gait = self.core.gait
        self.get_logger().info(f"set_gait: {res.message}")
        return res

    # ------------------------------------------------------------------ the loops
    def latest_state(self) -> RobotState | None:
        """The newest robot state (for diagnostics and callers outside the loop; a tick reads
        :meth:`_latest`, which the replay instruments to see what each tick consumed)."""
        if self.link is not None:
            return self.link.latest()
        mirror = self._mirror
        return None if mirror is None else mirror[0]

    def _latest(self) -> tuple[RobotState | None, Time | None]:
        """The state a control tick uses and the stamp of the robot_state message carrying it
        (None on the robot link: the step's own mirror carries it, with the step's stamp)."""
        if self.link is not None:
            return self.link.latest(), None
        mirror = self._mirror
        return (None, None) if mirror is None else mirror

    def report_fault(self, fault: str, detail: str) -> None:
        """A fault the node found (not the core): the core's next step latches it."""
        with self._fault_lock:
            self._node_faults.setdefault(fault, detail)

    def control_tick(self, deadline: float, lateness: float) -> None:
        """One control step (called by the 50 Hz deadline loop; the benchmark calls it too).

        Never raises: an exception anywhere in the tick hands damping to the LowCmd_ stream at
        once and the ``control_error`` fault (naming it) to the core's next step.
        """
        try:
            self._control_tick(lateness)
        except Exception as e:
            self._out = (self._damping, self.clock())
            self.tick_errors += 1
            self.report_fault(Fault.CONTROL_ERROR, f"{type(e).__name__} in the control tick: {e}")
            if self.context.ok():  # at shutdown, publishing fails: nothing to report then
                with contextlib.suppress(Exception):
                    self.get_logger().error(
                        f"control tick failed, damping: {type(e).__name__}: {e}",
                        throttle_duration_sec=1.0,
                    )

    def _control_tick(self, lateness: float) -> None:
        """The time-critical part (state -> core step -> targets handed to the LowCmd_ stream)
        comes first and is what ``compute_ms`` measures; the ROS messages are published after."""
        start = self.clock()
        period = math.nan if self._last_tick is None else start - self._last_tick
        self._last_tick = start
        state, state_stamp = self._latest()
        external = self.link.faults() if self.link is not None else ()
        with self._fault_lock:
            node_faults, self._node_faults = self._node_faults, {}
        stream = self._stream_thread
        if stream is not None and not stream.is_alive() and not self._stop.is_set():
            node_faults.setdefault(Fault.LOWCMD_STREAM, "the LowCmd_ stream thread is dead")
        operator = self._operator
        if operator is not None and self._pending_request:
            operator = dataclasses.replace(operator, request=self._pending_request)
            self._pending_request = 0
        operator, self.velocity_source = merge_velocity(
            operator, self._twist, start, self.config.cmd_vel, self.core.config.command_timeout_s
        )
        with self._lock:
            result = self.core.step(state, operator, start, (*external, *node_faults.items()))
        self._out = (result.command, self.clock())
        if Fault.CONTROL_STALLED in node_faults:
            self._hold_damping = False  # the core has seen it (and latched it outside PASSIVE)
        if Fault.LOWCMD_STREAM in node_faults and self.link is not None:
            self.link.send(self._damping)  # no stream to rely on: damp from here
        compute = self.clock() - start
        self.last_result = result
        for event in result.events:  # rclpy wants one severity per call site
            if "refused" in event:  # a held button repeats its request every tick: throttle
                self.get_logger().warning(event, throttle_duration_sec=1.0)
            else:
                self.get_logger().info(event)
        stamp = self.get_clock().now().to_msg()
        status = status_to_msg(
            result.status,
            stamp,
            start,
            operator,
            external,
            state_stamp=None if state is None else (state_stamp or stamp),
            period_ms=0.0 if math.isnan(period) else period * 1e3,
            period_error_ms=lateness * 1e3,
            compute_ms=compute * 1e3,
            overruns=self.loop_stats.overruns,
            bad_crc_frames=0 if self.link is None else int(self.link.bad_crc),
            policy=self.policy_name,
            sport_mode_active=bool(getattr(self.link, "sport_mode_active", False)),
        )
        self.status_pub.publish(status)
        self.joint_pub.publish(
            joint_command_to_msg(result.command, result.status.step, int(result.status.mode), stamp)
        )
        if self.state_pub is not None and state is not None:
            self.state_pub.publish(robot_state_to_msg(state, stamp))
        if state is not None:
            self.joint_state_pub.publish(joint_state_to_msg(state, stamp))
            self.imu_pub.publish(imu_to_msg(state, stamp))
        if result.status.mode == Mode.RUN:
            self.velocity_pub.publish(velocity_to_msg(result.status.estimated_lin_vel, stamp))
        self.compute_times.append(compute)
        self._diag_window.append((period, lateness, compute))

    def publish_diagnostics(self) -> None:
        """One ``/diagnostics`` message over the ticks since the last one (the 1 Hz timer).

        Never raises (it runs in the executor, beside the services): a failure is reported as
        an ERROR entry naming it."""
        try:
            entries = self._diagnostics()
        except Exception as e:
            detail = f"{type(e).__name__}: {e}"
            entries = [DiagnosticEntry("moe_loco: diagnostics", ERROR, detail[:300], ())]
        with contextlib.suppress(Exception):  # at shutdown, publishing fails
            msg = diagnostics_to_msg(entries, self.get_clock().now().to_msg())
            self.diagnostics_pub.publish(msg)

    def _diagnostics(self) -> list[DiagnosticEntry]:
        window, self._diag_window = self._diag_window, collections.deque(maxlen=1000)
        ticks = list(window)
        result = self.last_result
        status = None if result is None else result.status
        overruns = self.loop_stats.overruns
        bad_crc = 0 if self.link is None else int(self.link.bad_crc)
        zero_crc = int(getattr(self.link, "zero_crc", 0))
        trips = len(self.watchdog_trips)
        old_overruns, old_crc, old_trips, old_zero = self._diag_counts
        self._diag_counts = (overruns, bad_crc, trips, zero_crc)
        state = self.latest_state()
        link = LinkHealth(
            kind="mirror" if self.link is None else "unitree",
            state_age_s=math.inf if state is None else self.clock() - state.stamp,
            stale_limit_s=self.config.control.safety.stale_state_periods * self.core.control_dt,
            bad_crc_total=bad_crc,
            bad_crc_new=bad_crc - old_crc,
            zero_crc_new=zero_crc - old_zero,
            crc_check="verify" if getattr(self.link, "verify_crc", True) else "off",
            faults=tuple(self.link.faults()) if self.link is not None else (),
            watchdog_trips_total=trips,
            watchdog_trips_new=trips - old_trips,
            send_errors_total=self.stream_errors,
        )
        return controller_diagnostics(
            status,
            self.core.metadata,
            self.policy_name,
            periods_s=[p for p, _, _ in ticks],
            lateness_s=[abs(late) for _, late, _ in ticks],
            compute_s=[c for _, _, c in ticks],
            overruns_total=overruns,
            overruns_new=overruns - old_overruns,
            link=link,
            velocity_source=self.velocity_source,
        )

    def _stream_tick(self, deadline: float, lateness: float) -> None:
        """Send the loop's output while it is fresh, damping otherwise; never raises."""
        assert self.link is not None
        command, produced = self._out
        now = self.clock()
        if (
            produced is not None
            and now - produced > self.watchdog_limit_s
            and not self._hold_damping
        ):
            self._hold_damping = True
            self.watchdog_trips.append((now, now - produced))
            self.report_fault(
                Fault.CONTROL_STALLED,
                f"no control step for {(now - produced) * 1e3:.1f} ms "
                f"(limit {self.watchdog_limit_s * 1e3:.0f} ms)",
            )
        if self._hold_damping:
            command = self._damping
        try:
            self.link.send(command)
        except Exception as e:
            self.stream_errors += 1
            self.report_fault(Fault.LOWCMD_STREAM, f"{type(e).__name__} sending LowCmd_: {e}")
            with contextlib.suppress(Exception):
                self.link.send(self._damping)

    def start(self, naive: bool = False) -> None:
        """Start the control loop (and, with a link, the LowCmd_ stream) in their own threads.

        ``naive=True`` runs the control step in a compute-then-sleep loop instead of on absolute
        deadlines: only for the benchmark that shows why we do not.
        """
        # Python hands the GIL between threads every 5 ms by default: a DDS reader thread could
        # then hold the control thread past its deadline. 0.5 ms keeps the loops on time.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        dt = self.core.control_dt
        # a restart streams nothing of the last run's targets: zero torque in PASSIVE, else
        # damping, until the first step of this run (the watchdog arms with it)
        idle = JointCommand.zero_torque() if self.core.mode == Mode.PASSIVE else self._damping
        self._out = (idle, None)
        self._hold_damping = False
        if naive:
            control: Callable[[], Any] = lambda: naive_loop(  # noqa: E731
                dt, self.control_tick, self._stop, clock=self.clock, stats=self.loop_stats
            )
        else:
            loop = DeadlineLoop(dt, self.control_tick, self.clock, stats=self.loop_stats)
            control = lambda: loop.run(self._stop)  # noqa: E731
        self._threads = [threading.Thread(target=control, name="moe_loco_control", daemon=True)]
        if self.link is not None:
            stream = DeadlineLoop(
                1.0 / self.config.link.command_rate_hz,
                self._stream_tick,
                self.clock,
                stats=self.stream_stats,
            )
            self._threads.append(
                threading.Thread(
                    target=stream.run, args=(self._stop,), name="moe_loco_lowcmd", daemon=True
                )
            )
        for t in reversed(self._threads):  # the stream first: the loop checks it is alive
            t.start()
        self._stream_thread = self._threads[1] if len(self._threads) > 1 else None

    def stop(self, damp: bool = True) -> None:
        """Stop the loops; with a link, leave the motors damped (a last DAMP command is sent)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2.0)
        self._threads = []
        self._stream_thread = None
        self._stop = threading.Event()
        if not damp:
            return
        if self.link is not None:
            damp = JointCommand.damping(self.config.control.damp_kd)
            for _ in range(3):
                self.link.send(damp)

    def timing(self) -> dict[str, float]:
        """Loop statistics [ms, Hz]: ``loop_step_*`` is the whole tick (publishing included),
        ``loop_critical_*`` the state-to-targets part."""
        out = {f"loop_{k}": v for k, v in self.loop_stats.summary(self.core.control_dt).items()}
        crit = np.asarray(self.compute_times or [0.0]) * 1e3
        out["loop_critical_p50_ms"] = float(np.percentile(crit, 50))
        out["loop_critical_p99_ms"] = float(np.percentile(crit, 99))
        out["loop_critical_max_ms"] = float(crit.max())
        if self.link is not None:
            nominal = 1.0 / self.config.link.command_rate_hz
            out.update({f"cmd_{k}": v for k, v in self.stream_stats.summary(nominal).items()})
        return out

    @property
    def expert_scale(self) -> np.ndarray:
        return self.policy.expert_scale
