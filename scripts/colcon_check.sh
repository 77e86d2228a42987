#!/usr/bin/env bash
# `colcon build` and `colcon test` of ros2_ws/src, as on a robot's workspace, with colcon from PyPI
# (requirements/dev.txt) against the ROS 2 wheels in .venv (the venv is the ROS prefix), then checks
# that the install tree is usable: sourced, it imports our packages from itself, finds their share
# files through the ament index, and runs their console scripts.
#
#   scripts/colcon_check.sh           build, test, check (incremental: reuses build/colcon/build)
#   scripts/colcon_check.sh --clean   remove build/colcon first
#
# Output: build/colcon/{build,install,log}, test results in build/colcon/build/<package>/. Any
# failure exits non-zero and names it.
#
# colcon test runs moe_loco_msgs' CTest tests (test/test_interfaces.py against this install tree,
# not against the copy setup.sh puts into the venv) for real; for the three ament_python packages
# it runs pytest with --collect-only: colcon finds their tests and every test module imports in
# colcon's test environment, while running them stays with `make test`'s pytest (no second ~5 min).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
OUT="$ROOT/build/colcon"
SRC="$ROOT/ros2_ws/src"
PACKAGES=(moe_loco_msgs moe_loco_controller moe_loco_sim moe_loco_training)

log() { printf '[colcon] %s\n' "$*"; }
die() { printf '[colcon] ERROR: %s\n' "$*" >&2; exit 1; }

case "$*" in
  "") ;;
  --clean) log "removing $OUT"; rm -rf "$OUT" ;;
  *) die "usage: $0 [--clean]" ;;
esac

[ -x "$VENV/bin/colcon" ] || die "no colcon in $VENV: run 'make setup' (requirements/dev.txt pins it)"
command -v cmake >/dev/null || die "cmake is required (apt-get install cmake)"

# One environment, whatever the caller's: the venv's Python and the venv as the only ROS prefix; no
# other sourced workspace, no user-level colcon defaults or mixins; ROS traffic stays on this host.
unset COLCON_PREFIX_PATH COLCON_DEFAULTS_FILE CMAKE_ARGS PYTHONPATH RMW_IMPLEMENTATION
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
export COLCON_HOME="$OUT/home"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST FASTDDS_BUILTIN_TRANSPORTS=UDPv4
mkdir -p "$COLCON_HOME"
cd "$ROOT"

# A build folder configured for another checkout (a moved or re-cloned repository) cannot be reused.
cache="$OUT/build/moe_loco_msgs/CMakeCache.txt"
if [ -f "$cache" ] && ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$SRC/moe_loco_msgs" "$cache"; then
  log "build/colcon was configured for another checkout: starting clean"
  rm -rf "$OUT"
  mkdir -p "$COLCON_HOME"
fi

found=$(colcon list --base-paths "$SRC" --names-only | sort | tr '\n' ' ') \
  || die "colcon list failed in $SRC"
want=$(printf '%s\n' "${PACKAGES[@]}" | sort | tr '\n' ' ')
[ "$found" = "$want" ] || die "colcon finds packages '$found', expected '$want'"

# ---------------------------------------------------------------- build
t0=$(date +%s)
log "colcon build (${PACKAGES[*]})"
colcon --log-base "$OUT/log" build \
  --base-paths "$SRC" --build-base "$OUT/build" --install-base "$OUT/install" \
  --event-handlers desktop_notification- terminal_title- \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=ON \
  || die "colcon build failed (logs: $OUT/log/latest_build)"
t1=$(date +%s)

# ---------------------------------------------------------------- test
# Results stay in each package's build folder (colcon's default); stale ones are removed first.
rm -rf "$OUT/build/moe_loco_msgs/Testing" "$OUT/build/moe_loco_msgs/test_results" \
  "$OUT"/build/*/pytest.xml
log "colcon test"
colcon --log-base "$OUT/log" test \
  --base-paths "$SRC" --build-base "$OUT/build" --install-base "$OUT/install" \
  --return-code-on-test-failure \
  --event-handlers desktop_notification- terminal_title- \
  --ctest-args --output-on-failure \
  --pytest-args --collect-only -q \
  || { colcon test-result --test-result-base "$OUT/build" --verbose || true
       die "colcon test failed (logs: $OUT/log/latest_test)"; }
summary=$(colcon test-result --test-result-base "$OUT/build" --verbose) \
  || { printf '%s\n' "$summary"; die "colcon test-result reports failures"; }
printf '%s\n' "$summary"
# moe_loco_msgs: 2 CTest tests, and the pytest cases of test_interfaces.py inside the second.
xml="$OUT/build/moe_loco_msgs/test_results/moe_loco_msgs/interfaces_pytest.xml"
cases=$(grep -o 'tests="[0-9]*"' "$xml" 2>/dev/null | head -n 1 | tr -dc 0-9 || true)
[ "${cases:-0}" -ge 1 ] || die "moe_loco_msgs: colcon test ran no pytest case of test_interfaces.py"
for p in moe_loco_controller moe_loco_sim moe_loco_training; do
  n=$(sed -n 's/^\([0-9]*\) tests\? collected.*/\1/p' "$OUT/log/latest_test/$p/stdout_stderr.log" \
    2>/dev/null || true)
  [ "${n:-0}" -ge 1 ] || die "colcon test collected no pytest tests for $p (see $OUT/log/latest_test/$p)"
  log "$p: colcon's pytest collected $n tests (run by make test's pytest)"
done
t2=$(date +%s)

# ---------------------------------------------------------------- the install tree, sourced
log "checking the install tree"
INSTALL="$OUT/install" CHECK="$ROOT/scripts/colcon_install_check.py" bash -c '
set -eo pipefail
source "$INSTALL/setup.bash"
set -u
python "$CHECK" "$INSTALL"
' || die "the install tree is not usable (see above)"
t3=$(date +%s)
log "ok: build $((t1 - t0)) s, test $((t2 - t1)) s, install check $((t3 - t2)) s ($OUT/install)"
