"""Publishes a fixed LocoCommand on moe_loco/command at 20 Hz (rclpy), for tests.

python ros_command_peer.py --duration 20
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import rclpy
from rclpy.node import Node

from moe_loco_msgs.msg import LocoCommand


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--topic", default="moe_loco/command")
    a = ap.parse_args()
    rclpy.init()
    node = Node("command_peer")
    pub = node.create_publisher(LocoCommand, a.topic, 10)
    msg = LocoCommand(vx=0.5, vy=-0.25, wz=0.75, gait=LocoCommand.GAIT_BIPEDAL)
    msg.request = LocoCommand.REQUEST_RUN
    msg.deadman = True
    parent = os.getppid()
    start = time.monotonic()
    try:
        while time.monotonic() - start < a.duration and os.getppid() == parent:
            msg.header.stamp = node.get_clock().now().to_msg()
            pub.publish(msg)
            time.sleep(0.05)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
