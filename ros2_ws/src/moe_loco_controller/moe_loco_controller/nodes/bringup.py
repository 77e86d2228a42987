"""``moe-loco-bringup``: the controller and joystick nodes in one process, from one YAML file.

What ``ros2 launch moe_loco_controller go2.launch.py`` starts, for machines without ``ros2
launch`` (it is not installable from PyPI). Examples::

    moe-loco-bringup --policy policies/x.onnx --interface eth0          # the robot
    moe-loco-bringup --sim                                               # sim: domain 1 on lo
    moe-loco-bringup --sim --crc off                 # Unitree's unitree_mujoco (sends crc 0)
    moe-loco-bringup --link mirror --joystick none                      # replay from a bag
    moe-loco-bringup --sim --ros-args --params-file my_params.yaml      # ROS parameters

The nodes' ROS parameters take their defaults from ``--config`` (the packaged
``config/controller.yaml``, itself a ROS parameter file); ``--ros-args --params-file`` / ``-p``
override those, and this command's own options (``--policy``, ``--interface``, ``--domain``,
``--sim``, ``--crc``, ``--link``, ``--joystick``, ``--no-release``) override both: they are
handed to the nodes as ``-p name:=value`` after the user's ROS arguments.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rclpy
import yaml
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.utilities import remove_ros_args

from moe_loco_controller.core.config import Config, ConfigError, LinkConfig, load_config
from moe_loco_controller.core.go2 import SIM_DOMAIN_ID, SIM_INTERFACE
from moe_loco_controller.core.policy_files import newest_policy
from moe_loco_controller.core.policy_metadata import PolicyFileError, PolicyMetadata


def find_policy(explicit: str, search: Sequence[Path]) -> Path:
    """The policy file to run: ``explicit`` if given, else the newest .onnx in ``search`` (the
    highest version in its name: :mod:`moe_loco_controller.core.policy_files`)."""
    if explicit:
        return Path(explicit)
    found = [p for d in search if d.is_dir() for p in d.glob("*.onnx")]
    if not found:
        raise PolicyFileError(
            f"no policy given and no .onnx under {[str(d) for d in search]}; pass --policy"
        )
    newest = newest_policy(found)
    assert newest is not None
    return newest


def default_policy_dirs() -> list[Path]:
    here = Path(__file__).resolve()
    return [Path.cwd() / "policies", here.parents[4] / "policies"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="moe-loco-bringup", description=__doc__.split("\n")[0])
    p.add_argument("--config", type=Path, help="controller YAML (default: the packaged one)")
    p.add_argument("--policy", default=None, help="policy .onnx (default: config, then newest)")
    p.add_argument(
        "--nodes",
        default="controller,joystick",
        help="which nodes to run in this process: controller, joystick or both (default)",
    )
    p.add_argument(
        "--interface", help="network interface of the robot link (config: link.interface)"
    )
    p.add_argument(
        "--domain", type=int, help="DDS domain of the robot link (config: link.domain_id)"
    )
    p.add_argument(
        "--sim",
        nargs="?",
        const="true",
        default="false",
        choices=("true", "false"),
        help="talk to the simulator: domain 1 on lo, overriding --interface/--domain",
    )
    p.add_argument(
        "--crc",
        choices=("verify", "off"),
        help="rt/lowstate CRC policy (config: link.crc); off only with a simulator link, e.g. "
        "--sim --crc off for Unitree's unitree_mujoco, which sends crc 0",
    )
    p.add_argument("--link", choices=("unitree", "mirror"), help="robot-state source")
    p.add_argument("--joystick", choices=("joy", "go2_remote", "none"), help="joystick source")
    p.add_argument("--no-release", action="store_true", help="do not release the sport mode")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds")
    return p.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> Config:
    """The config from ``--config`` with this command's options applied (the nodes' parameter
    defaults; ROS arguments are applied by the nodes)."""
    cfg = load_config(args.config)
    changes = option_changes(args)
    return cfg.replace(**changes) if changes else cfg


def option_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The parameters this command's options set (dotted names)."""
    changes: dict[str, Any] = {}
    if args.interface is not None:
        changes["link.interface"] = args.interface
    if args.domain is not None:
        changes["link.domain_id"] = args.domain
    if args.sim == "true":  # the simulator's convention wins over interface/domain
        changes.update(
            {
                "link.interface": SIM_INTERFACE,
                "link.domain_id": SIM_DOMAIN_ID,
                "link.release_sport_mode": False,
            }
        )
    if args.crc is not None:
        changes["link.crc"] = args.crc
    if args.link is not None:
        changes["link.source"] = args.link
    if args.joystick not in (None, "none"):
        changes["joystick.source"] = args.joystick
    if args.no_release:
        changes["link.release_sport_mode"] = False
    if args.policy is not None:
        changes["policy"] = args.policy
    return changes


def parameter_arguments(changes: dict[str, Any]) -> list[str]:
    """``--ros-args -p name:=value ...`` (values as YAML, as rcl parses them) for ``changes``."""
    out = []
    for name, value in changes.items():
        text = yaml.safe_dump(value, default_flow_style=True, width=10**6)
        out += ["-p", f"{name}:={text.removesuffix(chr(10)).removesuffix('...').strip()}"]
    return ["--ros-args", *out] if out else []


def split_arguments(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(this command's arguments, the ROS arguments: ``--ros-args ...`` sections)."""
    ours = remove_ros_args(["moe-loco-bringup", *argv])[1:]
    return ours, _ros_sections(argv)


def _ros_sections(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    inside = False
    for a in argv:
        if a == "--ros-args":
            inside = True
            out.append(a)
        elif inside and a == "--":
            inside = False
            out.append(a)
        elif inside:
            out.append(a)
    return out


def controller_main(argv: Sequence[str] | None = None) -> int:
    """The ``controller_node`` executable (what the launch file starts)."""
    return main(["--nodes", "controller", *(sys.argv[1:] if argv is None else argv)])


def joystick_main(argv: Sequence[str] | None = None) -> int:
    """The ``joystick_node`` executable (what the launch file starts)."""
    return main(["--nodes", "joystick", *(sys.argv[1:] if argv is None else argv)])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, ros_args = split_arguments(argv)
    args = parse_args(ours)
    which = {n.strip() for n in args.nodes.split(",") if n.strip()}
    if not which or which - {"controller", "joystick"}:
        print(
            f"moe-loco-bringup: --nodes must name controller and/or joystick, got {args.nodes!r}",
            file=sys.stderr,
        )
        return 2
    if args.joystick == "none":
        which.discard("joystick")
    try:
        cfg = resolve_config(args)
    except ConfigError as e:
        print(f"moe-loco-bringup: {e}", file=sys.stderr)
        return 2
    from moe_loco_controller.core.policy import PolicyRuntime
    from moe_loco_controller.io.link import LinkError, UnitreeLink
    from moe_loco_controller.nodes.controller_node import ControllerNode
    from moe_loco_controller.nodes.joystick_node import JoystickNode

    def make_link(c: LinkConfig) -> UnitreeLink:
        return UnitreeLink(
            c.domain_id,
            c.interface,
            c.release_sport_mode,
            c.other_publisher_check_s,
            verify_crc=c.crc == "verify",
        )

    def metadata_of(policy: str) -> PolicyMetadata:
        return PolicyRuntime(find_policy(policy, default_policy_dirs())).metadata

    rclpy.init(args=["moe-loco-bringup", *ros_args, *parameter_arguments(option_changes(args))])
    nodes: list[Any] = []
    controller = None
    try:
        if "controller" in which:
            controller = ControllerNode(cfg, None, link_factory=make_link)
            nodes.append(controller)
            cfg = controller.config
        if "joystick" in which:
            meta = controller.policy.metadata if controller is not None else metadata_of
            nodes.append(JoystickNode(cfg.joystick, meta, cfg.namespace, policy=cfg.policy))
    except (ConfigError, PolicyFileError, LinkError) as e:
        for n in nodes:
            n.destroy_node()
        if controller is not None and controller.link is not None:
            controller.link.close()
        rclpy.try_shutdown()
        print(f"moe-loco-bringup: {e}", file=sys.stderr)
        return 3 if isinstance(e, LinkError) else 2
    link = None if controller is None else controller.link
    executor = MultiThreadedExecutor(num_threads=2)
    for n in nodes:
        executor.add_node(n)
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    if controller is not None:
        controller.start()
        controller.get_logger().info(
            f"running {controller.policy_name} ({cfg.link.source} link on "
            f"{cfg.link.interface}, domain {cfg.link.domain_id}); joystick: "
            f"{args.joystick or cfg.joystick.source}"
        )
    try:
        if args.duration > 0:
            import time

            end = time.monotonic() + args.duration
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.1)
        else:
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        timing = {}
        if controller is not None:
            controller.stop()
            timing = controller.timing()
        executor.shutdown()
        for n in nodes:
            n.destroy_node()
        if link is not None:
            link.close()
        rclpy.try_shutdown()
    if timing:
        print("timing: " + " ".join(f"{k}={v:.3f}" for k, v in timing.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
