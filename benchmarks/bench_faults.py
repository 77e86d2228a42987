"""make bench-faults: the fault campaign over real DDS on ``lo`` (the test's), figures printed.

Per scenario: the faults latched, the time from the fault to the first damping LowCmd_ the robot
received (ms, control periods, and periods after the fault became detectable); then the LowCmd_
the robot judged over the whole campaign. The last line is

    fault_campaign scenarios=<n> lowcmd=<n> non_finite=<k> out_of_bounds=<k> bad_crc=<k> ...
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT / "ros2_ws/src/moe_loco_controller/test"


def main() -> int:
    os.environ.setdefault("ROS_DOMAIN_ID", str(50 + os.getpid() % 40))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "UDPv4")
    sys.path.insert(0, str(TEST))
    import fault_campaign
    import policy_factory
    import rclpy

    from moe_loco_controller.io.lowlevel import init_channels

    domain = 90 + os.getpid() % 10
    init_channels(domain, "lo")
    with tempfile.TemporaryDirectory() as tmp:
        policy = policy_factory.write_policy(Path(tmp) / "nan_above.onnx", nan_above_vx=0.75)
        rclpy.init()
        try:
            fault_campaign.run_campaign(domain, policy)
        finally:
            rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
