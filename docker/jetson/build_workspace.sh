#!/usr/bin/env bash
# The onboard image's workspace setup: colcon-build our packages against the sourced ROS 2, write
# the onboard controller configuration, and check the result (the Dockerfile runs it).
#
#   build_workspace.sh SRC PREFIX CONFIG
#
# SRC     a folder of ROS packages holding moe_loco_controller (the image: it and moe_loco_msgs);
#         everything moe_loco_controller needs is built, the rest must be in the ROS 2 underlay
# PREFIX  the colcon install base (the image: /opt/moe_loco/install)
# CONFIG  the onboard controller parameter file to write: the packaged one with device: auto
#         (ONNX Runtime's TensorRT, else CUDA, else CPU provider), checked by the controller's loader
#
# Environment: ROS_SETUP (default /opt/ros/$ROS_DISTRO/setup.bash, ROS_DISTRO default humble);
# COLCON_BUILD_BASE (default: a temporary folder, removed afterwards).
set -euo pipefail

log() { printf '[build_workspace] %s\n' "$*"; }
die() { printf '[build_workspace] ERROR: %s\n' "$*" >&2; exit 1; }

[ $# = 3 ] || die "usage: $0 SRC PREFIX CONFIG"
[ -d "$1/moe_loco_controller" ] || die "$1 holds no moe_loco_controller package"
SRC=$(cd "$1" && pwd)
mkdir -p "$2" "$(dirname "$3")"
PREFIX=$(cd "$2" && pwd)
CONFIG="$(cd "$(dirname "$3")" && pwd)/$(basename "$3")"
ROS_SETUP=${ROS_SETUP:-/opt/ros/${ROS_DISTRO:-humble}/setup.bash}

[ -f "$ROS_SETUP" ] || die "no ROS 2 setup file at $ROS_SETUP (ROS_SETUP)"
set +u  # ROS's setup scripts read unset variables
# shellcheck disable=SC1090
source "$ROS_SETUP"
set -u
command -v colcon >/dev/null || die "colcon is not on PATH after sourcing $ROS_SETUP"

own_build=0
if [ -z "${COLCON_BUILD_BASE:-}" ]; then
  COLCON_BUILD_BASE=$(mktemp -d)
  own_build=1
fi
log "colcon build of $SRC (up to moe_loco_controller) into $PREFIX"
colcon --log-base "$COLCON_BUILD_BASE/log" build \
  --base-paths "$SRC" --packages-up-to moe_loco_controller \
  --build-base "$COLCON_BUILD_BASE/build" --install-base "$PREFIX" \
  --event-handlers desktop_notification- terminal_title- \
  --cmake-args -DBUILD_TESTING=OFF \
  || die "colcon build failed (logs: $COLCON_BUILD_BASE/log)"
[ "$own_build" = 0 ] || rm -rf "$COLCON_BUILD_BASE"

set +u
# shellcheck disable=SC1091
source "$PREFIX/setup.bash"
set -u
log "writing $CONFIG (the packaged controller.yaml, device: auto)"
python3 - "$PREFIX" "$CONFIG" <<'EOF' || die "the installed workspace does not work (see above)"
import sys
from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory

import moe_loco_controller
from moe_loco_controller.core.config import load_config

prefix, out = Path(sys.argv[1]), Path(sys.argv[2])
where = Path(moe_loco_controller.__file__).resolve()
if prefix.resolve() not in where.parents:
    sys.exit(f"moe_loco_controller imports from {where}, not from {prefix}")
import moe_loco_msgs.msg  # noqa: E402, F401  (the interfaces: built here or in the underlay)

packaged = Path(get_package_share_directory("moe_loco_controller")) / "config" / "controller.yaml"
data = yaml.safe_load(packaged.read_text())
data["/**"]["ros__parameters"]["device"] = "auto"
header = "# The onboard controller parameters: docker/jetson/build_workspace.sh wrote this file from\n"
header += f"# {packaged} with device: auto.\n"
out.write_text(header + yaml.safe_dump(data, sort_keys=False))
cfg = load_config(out)
if cfg.device != "auto":
    sys.exit(f"{out}: device is {cfg.device!r} after loading")
EOF
bringup="$PREFIX/moe_loco_controller/lib/moe_loco_controller/moe-loco-bringup"
"$bringup" --help >/dev/null || die "$bringup --help failed"
log "ok: $PREFIX, $CONFIG"
