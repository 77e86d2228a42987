"""Check a colcon install tree of ros2_ws/src, from a shell that sourced its setup.bash.

    source build/colcon/install/setup.bash
    python scripts/colcon_install_check.py build/colcon/install

Our packages must import from that tree (not from the venv's editable installs or its copy of
moe_loco_msgs), their share files must be found through the ament index, every console script
must be installed where `ros2 run` looks (lib/<package>/), every executable our launch files start
must be among them, the controller must find its packaged config through the index, and the main
console scripts must answer --help. Exits 1 naming every problem found.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

PYTHON_PACKAGES = ("moe_loco_controller", "moe_loco_sim", "moe_loco_training")
SHARE_FILES = {
    "moe_loco_msgs": [
        "package.xml",
        "msg/LocoCommand.msg",
        "msg/ControllerStatus.msg",
        "msg/RobotState.msg",
        "msg/JointCommand.msg",
        "srv/SetExpertScale.srv",
        "srv/SetGait.srv",
    ],
    "moe_loco_controller": [
        "package.xml",
        "config/controller.yaml",
        "config/expert_presets.yaml",
        "config/foxglove_layout.json",
        "launch/go2.launch.py",
    ],
    "moe_loco_sim": [
        "package.xml",
        "config/sim.yaml",
        "config/terrain.yaml",
        "launch/sim.launch.py",
    ],
    "moe_loco_training": [
        "package.xml",
        "config/train.yaml",
        "config/env.yaml",
        "config/benchmark.yaml",
    ],
}
HELP = {"moe_loco_controller": "moe-loco-bringup", "moe_loco_sim": "moe-loco-sim"}
LAUNCHED = re.compile(r'package="(moe_loco_\w+)",\s*executable="([^"]+)"')


def main() -> int:
    install = Path(sys.argv[1]).resolve()
    errors: list[str] = []

    def inside(path: str | os.PathLike[str]) -> bool:
        return install in Path(path).resolve().parents

    from rclpy.serialization import deserialize_message, serialize_message

    import moe_loco_msgs.msg as msgs

    for name in ("moe_loco_msgs", *PYTHON_PACKAGES):
        mod = importlib.import_module(name)
        if not inside(mod.__file__):
            errors.append(f"{name} imports from {mod.__file__}, not from {install}")
    cmd = msgs.LocoCommand(vx=0.5, gait=msgs.LocoCommand.GAIT_BIPEDAL, deadman=True)
    back = deserialize_message(serialize_message(cmd), msgs.LocoCommand)
    if not (back.gait == 1 and back.deadman and abs(back.vx - 0.5) < 1e-6):
        errors.append(f"LocoCommand does not round-trip: {back}")

    from ament_index_python.packages import get_package_share_directory

    for pkg, files in SHARE_FILES.items():
        share = Path(get_package_share_directory(pkg))
        if not inside(share):
            errors.append(f"{pkg}: the ament index gives {share}, not a folder in {install}")
        errors += [f"{pkg}: share/{pkg}/{f} missing" for f in files if not (share / f).is_file()]

    # Console scripts where `ros2 run` looks, from the metadata of the distribution installed here.
    for pkg in PYTHON_PACKAGES:
        dist = importlib.metadata.distribution(pkg)
        if not inside(dist.locate_file("")):
            errors.append(f"{pkg}: its metadata comes from {dist.locate_file('')}")
        scripts = [e.name for e in dist.entry_points if e.group == "console_scripts"]
        if not scripts:
            errors.append(f"{pkg}: no console_scripts in its installed metadata")
        lib = install / pkg / "lib" / pkg
        missing = [s for s in scripts if not os.access(lib / s, os.X_OK)]
        errors += [f"{pkg}: lib/{pkg}/{s} is not installed as an executable" for s in missing]
    for pkg in ("moe_loco_controller", "moe_loco_sim"):
        for launch in (Path(get_package_share_directory(pkg)) / "launch").glob("*.launch.py"):
            for package, exe in LAUNCHED.findall(launch.read_text()):
                if not os.access(install / package / "lib" / package / exe, os.X_OK):
                    errors.append(f"{launch.name} starts {package}/{exe}, which is not installed")

    # The installed controller finds its packaged files through the index, as on the robot.
    from moe_loco_controller.core.config import default_config_path, load_config
    from moe_loco_controller.core.expert_presets import default_presets_path

    for what, path in (("config", default_config_path()), ("presets", default_presets_path())):
        if not inside(path):
            errors.append(f"the installed controller's {what} file resolves to {path}")
    load_config()

    for pkg, exe in HELP.items():
        run = subprocess.run(
            [str(install / pkg / "lib" / pkg / exe), "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if run.returncode != 0 or "usage:" not in run.stdout:
            errors.append(f"{exe} --help: exit {run.returncode}: {run.stdout}{run.stderr}"[-2000:])

    if errors:
        print("[colcon] install tree check FAILED:", *errors, sep="\n  ", file=sys.stderr)
        return 1
    print(f"[colcon] install tree ok: imports, share files, console scripts, config ({install})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
