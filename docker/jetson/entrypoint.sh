#!/usr/bin/env bash
# The onboard image's entrypoint: check what the controller needs, source ROS 2 and our workspace,
# then exec the controller bringup (it becomes the container's main process and gets its signals).
#
#   entrypoint.sh [OPTION...]          moe-loco-bringup with the settings below, then OPTION...
#                                      (e.g. --duration 60, --ros-args -p control.damp_kd:=3.0;
#                                      with MOE_LOCO_MODE=launch: launch arguments, name:=value)
#   entrypoint.sh COMMAND [ARG...]     COMMAND in the sourced environment, no checks (bash, ros2 ...)
#
# Settings (environment; docker/jetson/run.sh sets them):
#   MOE_LOCO_INTERFACE  required: the robot's network interface (eth0 on the Go2's Jetson)
#   MOE_LOCO_POLICY     required: the policy .onnx file (mounted into the container)
#   MOE_LOCO_DOMAIN     DDS domain of the Unitree link (default 0: the robot)
#   MOE_LOCO_JOYSTICK   go2_remote (default: the Go2's own remote) | joy (a gamepad on /joy) | none
#   MOE_LOCO_MODE       bringup (default: one process) | launch (ros2 launch go2.launch.py, which
#                       also starts the joy driver for joystick joy)
#   MOE_LOCO_CONFIG     controller parameter file (default /opt/moe_loco/controller.yaml)
#   ROS_DOMAIN_ID       our ROS 2 topics (default 10: not the Unitree link's DDS domain)
#   ROS_SETUP, MOE_LOCO_WS, CYCLONEDDS_HOME  where ROS 2, our colcon install and CycloneDDS are
set -euo pipefail

log() { printf '[moe-loco] %s\n' "$*" >&2; }
die() { printf '[moe-loco] ERROR: %s\n' "$*" >&2; exit 2; }

ROS_SETUP=${ROS_SETUP:-/opt/ros/${ROS_DISTRO:-humble}/setup.bash}
MOE_LOCO_WS=${MOE_LOCO_WS:-/opt/moe_loco/install}
MOE_LOCO_CONFIG=${MOE_LOCO_CONFIG:-/opt/moe_loco/controller.yaml}
CYCLONEDDS_HOME=${CYCLONEDDS_HOME:-/opt/cyclonedds}
MOE_LOCO_DOMAIN=${MOE_LOCO_DOMAIN:-0}
MOE_LOCO_JOYSTICK=${MOE_LOCO_JOYSTICK:-go2_remote}
MOE_LOCO_MODE=${MOE_LOCO_MODE:-bringup}
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-10}

source_environment() {
  [ -f "$ROS_SETUP" ] || die "no ROS 2 setup file at $ROS_SETUP (ROS_SETUP)"
  [ -f "$MOE_LOCO_WS/setup.bash" ] \
    || die "no colcon workspace at $MOE_LOCO_WS (MOE_LOCO_WS): $MOE_LOCO_WS/setup.bash is missing"
  set +u  # ROS's and colcon's setup scripts read unset variables
  # shellcheck disable=SC1090
  source "$ROS_SETUP"
  # shellcheck disable=SC1091
  source "$MOE_LOCO_WS/setup.bash"
  set -u
  # unitree_sdk2py's CycloneDDS binding was built against CycloneDDS 0.10.2 in CYCLONEDDS_HOME: its
  # libddsc comes first, before any other on the path (ROS's own CycloneDDS, if installed).
  export LD_LIBRARY_PATH="$CYCLONEDDS_HOME/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

# A command (neither an option nor a launch argument name:=value): run it in the environment.
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ] && [[ "$1" != *:=* ]]; then
  source_environment
  exec "$@"
fi

iface=${MOE_LOCO_INTERFACE:-}
[ -n "$iface" ] || die "MOE_LOCO_INTERFACE is not set: name the robot's network interface" \
  "(eth0 on the Go2's Jetson; docker/jetson/run.sh --interface IFACE)"
[[ "$iface" =~ ^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,14}$ ]] \
  || die "MOE_LOCO_INTERFACE '$iface' is not a network interface name"
if [ ! -e "/sys/class/net/$iface" ]; then
  have=$(ls /sys/class/net 2>/dev/null | tr '\n' ' ' || true)
  die "network interface '$iface' does not exist here (interfaces: ${have:-none});" \
    "the container needs the host's network (docker run --network host)"
fi
policy=${MOE_LOCO_POLICY:-}
[ -n "$policy" ] || die "MOE_LOCO_POLICY is not set: name the policy .onnx file" \
  "(docker/jetson/run.sh --policy FILE mounts it)"
[ -f "$policy" ] || die "policy file '$policy' does not exist in the container (not mounted?)"
[ -r "$policy" ] && [ -s "$policy" ] || die "policy file '$policy' is empty or not readable"
for var in MOE_LOCO_DOMAIN ROS_DOMAIN_ID; do
  value=${!var}
  [[ "$value" =~ ^[0-9]{1,3}$ ]] && [ "$value" -le 232 ] \
    || die "$var must be a DDS domain id, 0..232, got '$value'"
done
[ "$ROS_DOMAIN_ID" != "$MOE_LOCO_DOMAIN" ] \
  || log "warning: ROS_DOMAIN_ID equals the Unitree link's domain ($MOE_LOCO_DOMAIN):" \
    "rclpy and the SDK share this process, keep their DDS domains apart"
case "$MOE_LOCO_JOYSTICK" in
  joy | go2_remote | none) ;;
  *) die "MOE_LOCO_JOYSTICK must be joy, go2_remote or none, got '$MOE_LOCO_JOYSTICK'" ;;
esac
[ -f "$MOE_LOCO_CONFIG" ] || die "no controller parameter file at $MOE_LOCO_CONFIG (MOE_LOCO_CONFIG)"

source_environment
log "policy $policy, interface $iface, Unitree domain $MOE_LOCO_DOMAIN," \
  "ROS domain $ROS_DOMAIN_ID, joystick $MOE_LOCO_JOYSTICK, $MOE_LOCO_MODE"
case "$MOE_LOCO_MODE" in
  bringup)
    bringup="$MOE_LOCO_WS/moe_loco_controller/lib/moe_loco_controller/moe-loco-bringup"
    [ -x "$bringup" ] || die "$bringup is missing: the workspace has no moe_loco_controller"
    exec "$bringup" --config "$MOE_LOCO_CONFIG" --policy "$policy" --interface "$iface" \
      --domain "$MOE_LOCO_DOMAIN" --joystick "$MOE_LOCO_JOYSTICK" "$@"
    ;;
  launch)
    command -v ros2 >/dev/null || die "MOE_LOCO_MODE=launch needs the ros2 command (ROS 2 CLI)"
    exec ros2 launch moe_loco_controller go2.launch.py "config:=$MOE_LOCO_CONFIG" \
      "policy:=$policy" "interface:=$iface" "domain:=$MOE_LOCO_DOMAIN" \
      "joystick:=$MOE_LOCO_JOYSTICK" "$@"
    ;;
  *) die "MOE_LOCO_MODE must be bringup or launch, got '$MOE_LOCO_MODE'" ;;
esac
