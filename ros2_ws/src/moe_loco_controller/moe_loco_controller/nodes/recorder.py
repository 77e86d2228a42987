"""``moe-loco-record``: the controller's topics into an MCAP bag (rosbags), crash-tolerant.

Examples::

    moe-loco-record -o runs/demo/bag                      # our four topics under moe_loco,
                                                          # joint_states, imu/data, cmd_vel,
                                                          # estimated_velocity and /diagnostics
    moe-loco-record -o bag --duration 30 --topics status,joint_command,robot_state

The subscriptions take the serialized CDR bytes (``raw=True``) and write them unchanged, stamped
with the time DDS received them. The bag is flushed every ``--flush-interval`` seconds, so a
recorder that is killed (even SIGKILL) leaves a bag readable up to its last flush
(:mod:`moe_loco_controller.bag`); SIGINT/SIGTERM and ``--duration`` close it properly.

:class:`StepWriter` writes a core-driven run (lockstep simulation, tests) into a bag exactly as
the controller node publishes it, so such runs replay like recorded ones.
"""

from __future__ import annotations

import argparse
import importlib
import math
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from rclpy.subscription import MessageInfo

from moe_loco_controller.bag import MSG_TYPES, RECORDED_TOPICS, BagError, BagWriter, topic_types
from moe_loco_controller.core.controller import ControlCore, OperatorCommand, StepResult
from moe_loco_controller.core.robot_state import RobotState
from moe_loco_controller.nodes.messages import (
    command_to_msg,
    joint_command_to_msg,
    robot_state_to_msg,
    status_to_msg,
)


def msg_class(msgtype: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name``."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


class RecorderNode(Node):
    """Records ``topics`` (name -> type) into ``writer``; the caller closes the writer after
    destroying this node."""

    def __init__(
        self,
        writer: BagWriter,
        topics: Mapping[str, str],
        node_name: str = "moe_loco_recorder",
        depth: int = 500,
    ) -> None:
        super().__init__(node_name)
        self.writer = writer
        qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        self._subs = [
            self.create_subscription(msg_class(t), topic, self._callback(topic), qos, raw=True)
            for topic, t in topics.items()
        ]
        self.create_timer(writer.flush_interval_s / 2, writer.flush_if_due)

    def _callback(self, topic: str) -> Callable[[bytes, MessageInfo], None]:
        def on_message(data: bytes, info: MessageInfo) -> None:
            stamp = int(info.get("received_timestamp") or 0)
            if stamp <= 0:
                stamp = self.get_clock().now().nanoseconds
            self.writer.write(topic, stamp, data)

        return on_message

    def publisher_counts(self) -> dict[str, int]:
        """Publishers currently matched on each recorded topic."""
        return {s.topic_name: self.count_publishers(s.topic_name) for s in self._subs}


def ros_time(seconds: float) -> Time:
    """A builtin_interfaces/Time from seconds."""
    ns = round(seconds * 1e9)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


class StepWriter:
    """Writes control steps of a :class:`~..core.controller.ControlCore` into a bag with the
    messages (and the fields) that :meth:`ControllerNode.control_tick` publishes.

    ``now`` is the core's clock; ROS stamps and bag timestamps are ``epoch_s + now``.
    """

    def __init__(
        self,
        writer: BagWriter,
        namespace: str = "moe_loco",
        policy_name: str = "",
        epoch_s: float = 1.7e9,
    ) -> None:
        self.writer = writer
        self.topics = {name: t for t, name in zip(topic_types(namespace), MSG_TYPES, strict=True)}
        self.policy_name = policy_name
        self.epoch_s = epoch_s
        self._last_time: float | None = None

    def attach(self, core: ControlCore) -> None:
        """Record every later ``core.step(...)`` with its inputs, for runs that drive the core
        themselves, e.g. the lockstep simulation::

            StepWriter(BagWriter(path, topic_types()), policy_name=p.name).attach(harness.core)
        """
        step = core.step

        def recorded(
            state: RobotState | None,
            command: OperatorCommand | None,
            now: float,
            external_faults: tuple[tuple[str, str], ...] = (),
        ) -> StepResult:
            result = step(state, command, now, external_faults)
            self.step(result, state, command, now, external_faults)
            return result

        core.step = recorded  # the instance attribute shadows the method

    def _write(self, name: str, seconds: float, msg: Any) -> None:
        self.writer.write(
            self.topics[name], round((self.epoch_s + seconds) * 1e9), serialize_message(msg)
        )

    def command(self, operator: OperatorCommand) -> None:
        """An operator command as it arrived on ``<ns>/command`` (at ``operator.stamp``)."""
        self._write(
            "command",
            operator.stamp,
            command_to_msg(operator, ros_time(self.epoch_s + operator.stamp)),
        )

    def step(
        self,
        result: StepResult,
        state: RobotState | None,
        operator: OperatorCommand | None,
        now: float,
        link_faults: tuple[tuple[str, str], ...] = (),
        compute_ms: float = 0.0,
    ) -> None:
        """The status, joint command and robot-state mirror of one step the core took at ``now``
        with these inputs (``operator``: with the request as applied)."""
        period = math.nan if self._last_time is None else now - self._last_time
        self._last_time = now
        stamp = ros_time(self.epoch_s + now)
        status = status_to_msg(
            result.status,
            stamp,
            now,
            operator,
            link_faults,
            state_stamp=None if state is None else stamp,  # its mirror, written below
            period_ms=0.0 if math.isnan(period) else period * 1e3,
            period_error_ms=0.0,
            compute_ms=compute_ms,
            overruns=0,
            bad_crc_frames=0,
            policy=self.policy_name,
            sport_mode_active=False,
        )
        self._write("status", now, status)
        self._write(
            "joint_command",
            now,
            joint_command_to_msg(
                result.command, result.status.step, int(result.status.mode), stamp
            ),
        )
        if state is not None:
            self._write("robot_state", now, robot_state_to_msg(state, stamp))


# ---------------------------------------------------------------------- the command line
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="moe-loco-record", description=__doc__.split("\n")[0])
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="bag directory to create (default: moe_loco_<date>_<time> here)",
    )
    p.add_argument("--namespace", default="moe_loco", help="the controller's namespace")
    every = RECORDED_TOPICS
    p.add_argument(
        "--topics",
        default=",".join(every),
        help=f"comma-separated topic names (default: all of {','.join(every)}; ours are under "
        "the namespace, as is estimated_velocity)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="stop after this many seconds (default: until SIGINT/SIGTERM)",
    )
    p.add_argument(
        "--flush-interval",
        type=float,
        default=0.5,
        help="seconds between flushes; a killed recorder loses at most this much",
    )
    p.add_argument("--fsync", action="store_true", help="fsync each flush (power loss too)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        names = [n.strip() for n in args.topics.split(",") if n.strip()]
        topics = topic_types(args.namespace, names)
        if not topics:
            raise ValueError("no topics given")
        if not args.flush_interval > 0 or args.duration < 0:
            raise ValueError("--flush-interval must be > 0 and --duration >= 0")
    except ValueError as e:
        print(f"moe-loco-record: {e}", file=sys.stderr)
        return 2
    out = args.output or Path(f"moe_loco_{datetime.now():%Y%m%d_%H%M%S}")
    try:
        writer = BagWriter(
            out,
            topics,
            flush_interval_s=args.flush_interval,
            fsync=args.fsync,
            custom_data={"recorder": "moe-loco-record"},
        )
    except BagError as e:
        print(f"moe-loco-record: {e}", file=sys.stderr)
        return 2

    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    rclpy.init()
    node = RecorderNode(writer, topics)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    print(f"moe-loco-record: recording {', '.join(topics)} to {out}", flush=True)
    try:
        if args.duration > 0:
            end = time.monotonic() + args.duration
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=min(0.1, max(0.0, end - time.monotonic())))
        else:
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()  # no callback may write once the writer closes
        writer.close()
        rclpy.try_shutdown()
    counts = ", ".join(f"{t}: {n}" for t, n in writer.counts.items())
    print(f"moe-loco-record: wrote {out} ({counts})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
