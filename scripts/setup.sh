#!/usr/bin/env bash
# One idempotent setup for development, tests, the demo and CI.
#
#   scripts/setup.sh          set up what is missing or out of date (a no-op when nothing changed)
#   scripts/setup.sh --force  redo every step
#
# Creates .venv (Python 3.11) with the pinned requirement files, the ROS 2 wheels, our interface
# package built into the venv prefix, CycloneDDS 0.10.2 (against Debian's cyclonedds-dev) and
# Unitree's unitree-sdk2 without its broken dependencies, torch 2.13.0 (CPU), and our own
# packages installed editable. Each step is skipped when a stamp of its inputs is unchanged.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
STAMPS="$VENV/.stamps"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# A step runs when the hash of its inputs differs from its stamp.
inputs_hash() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
up_to_date() { [ "$FORCE" = 0 ] && [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp() { mkdir -p "$STAMPS"; echo "$2" >"$STAMPS/$1"; }

# ---------------------------------------------------------------- system packages (apt)
need_apt=()
dpkg -s cyclonedds-dev >/dev/null 2>&1 || need_apt+=(cyclonedds-dev)
# OSMesa: MuJoCo's offscreen rendering (videos of simulated runs) on machines without a GPU.
dpkg -s libosmesa6 >/dev/null 2>&1 || need_apt+=(libosmesa6)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"
  else
    die "missing Debian packages: ${need_apt[*]}. Run: sudo apt-get update && sudo apt-get install -y ${need_apt[*]}"
  fi
  log "installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq || log "apt-get update failed; trying the install with the lists at hand"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null \
    || die "apt-get install ${need_apt[*]} failed"
fi

# ---------------------------------------------------------------- the virtual environment
PY=""
for cand in python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    PY=$(command -v "$cand"); break
  fi
done
[ -n "$PY" ] || die "Python 3.11 is required (the ROS 2 wheels are cp311); none found on PATH"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install -q --disable-pip-version-check)
[ -d /opt/wheels ] && PIP+=(--find-links /opt/wheels)
# pip's warnings about file:// indexes that lack a package are noise here.
pip_install() { "${PIP[@]}" "$@" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true; return "${PIPESTATUS[0]}"; }

REQ="$ROOT/requirements"
h=$(inputs_hash "$REQ"/*.txt "$ROOT/scripts/setup.sh")
if ! up_to_date requirements "$h"; then
  log "installing pinned requirements (torch first: the CPU build on disk)"
  pip_install "torch==2.13.0" -c "$REQ/constraints.txt"
  pip_install -r "$REQ/runtime.txt" -r "$REQ/training.txt" -r "$REQ/dev.txt" -c "$REQ/constraints.txt"
  "$VPY" -c 'import torch, sys; sys.exit("CUDA torch installed: remove .venv and rerun" if torch.version.cuda else 0)'
  stamp requirements "$h"
fi

# ---------------------------------------------------------------- CycloneDDS 0.10.2 + unitree-sdk2
# The robot and Unitree's SDKs run CycloneDDS 0.10.2; 11.x crashes 0.10.2 peers on discovery.
# No cp311 wheel of 0.10.2 exists: build it against Debian's library through CYCLONEDDS_HOME.
h=$(inputs_hash "$ROOT/scripts/setup.sh")
if ! up_to_date unitree "$h"; then
  CYC_HOME="$VENV/cyclonedds_home"
  mkdir -p "$CYC_HOME"
  multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
  ln -sfn /usr/include "$CYC_HOME/include"
  ln -sfn /usr/bin "$CYC_HOME/bin"
  ln -sfn "/usr/lib/$multiarch" "$CYC_HOME/lib"
  log "building cyclonedds 0.10.2 for Python against Debian's libddsc"
  CYCLONEDDS_HOME="$CYC_HOME" pip_install "cyclonedds==0.10.2"
  # unitree-sdk2 declares numpy/opencv (unused by the low-level path) and pins cyclonedds in a way
  # pip cannot satisfy: install it alone. Its packaging defects are handled in
  # moe_loco_controller/io/unitree_sdk.py, and nowhere else.
  pip_install --no-deps "unitree-sdk2==1.0.1"
  stamp unitree "$h"
fi

# ---------------------------------------------------------------- moe_loco_msgs into the venv prefix
MSGS="$ROOT/ros2_ws/src/moe_loco_msgs"
h=$(inputs_hash "$MSGS"/CMakeLists.txt "$MSGS"/package.xml "$MSGS"/msg/* "$MSGS"/srv/* \
  "$ROOT/scripts/fix_ros_wheel_cmake.py" "$ROOT/scripts/setup.sh" "$STAMPS/requirements")
if ! up_to_date msgs "$h"; then
  log "building moe_loco_msgs into the venv"
  "$VPY" "$ROOT/scripts/fix_ros_wheel_cmake.py" "$VENV"
  BUILD="$ROOT/build/moe_loco_msgs"
  rm -rf "$BUILD"
  mkdir -p "$BUILD"
  export AMENT_PREFIX_PATH="$VENV"
  command -v cmake >/dev/null || die "cmake is required to build moe_loco_msgs (apt-get install cmake)"
  build_ok=1
  { cmake -S "$MSGS" -B "$BUILD" -DCMAKE_INSTALL_PREFIX="$VENV" -DCMAKE_PREFIX_PATH="$VENV" \
           -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF \
      && cmake --build "$BUILD" -j "$(nproc)" \
      && cmake --install "$BUILD"; } >"$ROOT/build/moe_loco_msgs.log" 2>&1 || build_ok=0
  if [ "$build_ok" = 0 ]; then
    tail -n 30 "$ROOT/build/moe_loco_msgs.log" >&2
    die "building moe_loco_msgs failed; full log in build/moe_loco_msgs.log"
  fi
  stamp msgs "$h"
fi

# ---------------------------------------------------------------- our Python packages (editable)
PKGS=(moe_loco_controller moe_loco_sim moe_loco_training)
h=$(inputs_hash "$ROOT/scripts/setup.sh" $(for p in "${PKGS[@]}"; do echo "$ROOT/ros2_ws/src/$p/setup.py" "$ROOT/ros2_ws/src/$p/setup.cfg"; done))
if ! up_to_date packages "$h"; then
  log "installing our packages (editable)"
  args=()
  for p in "${PKGS[@]}"; do args+=(-e "$ROOT/ros2_ws/src/$p"); done
  pip_install --no-deps --no-build-isolation "${args[@]}"
  stamp packages "$h"
fi

# ---------------------------------------------------------------- a last check that costs ~1 s
AMENT_PREFIX_PATH="$VENV" "$VPY" - <<'EOF' || die "the environment does not import; rerun with --force"
import moe_loco_msgs.msg, rclpy, onnxruntime, mujoco, torch  # noqa: F401
import moe_loco_controller, moe_loco_sim, moe_loco_training  # noqa: F401
from moe_loco_controller.io.unitree_sdk import sdk  # noqa: F401
EOF
log "ready: $VENV"
