#!/usr/bin/env bash
# Run the onboard image on the Go2's Jetson: the host's network (the robot's DDS traffic and our
# ROS 2 topics), the robot's interface, the NVIDIA runtime (CUDA/TensorRT), the policy mounted
# read-only. The controller starts PASSIVE; the operator stands it up (docker/jetson/README.md).
#
#   docker/jetson/run.sh --interface eth0 --policy FILE.onnx [OPTION...] [-- ARG...]
#
#   --interface IFACE   required: the robot's network interface on this computer (eth0 on the Jetson)
#   --policy FILE       required: the policy .onnx on this computer
#   --joystick SOURCE   go2_remote (default: the Go2's own remote) | joy (a gamepad: /dev/input is
#                       passed in; with --launch the joy driver runs too) | none
#   --domain N          DDS domain of the Unitree link (default 0: the robot)
#   --ros-domain N      ROS_DOMAIN_ID of our ROS 2 topics (default 10)
#   --config FILE       a controller parameter file instead of the image's
#   --launch            ros2 launch moe_loco_controller go2.launch.py instead of moe-loco-bringup
#   --image IMAGE       default moe-loco-jetson:0.1.0
#   --dry-run           print the docker command and exit: runs nothing
#   -- ARG...           handed to the entrypoint: bringup options (--duration 60), or a command
#                       (bash, ros2 topic list) run in the image's environment instead
#
# DOCKER names the docker executable (default docker).
set -euo pipefail

die() { printf '[run.sh] ERROR: %s\n' "$*" >&2; exit 2; }

iface="" policy="" config="" joystick=go2_remote domain=0 ros_domain=10 mode=bringup
image=moe-loco-jetson:0.1.0 dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --interface | --policy | --joystick | --domain | --ros-domain | --config | --image)
      [ $# -ge 2 ] || die "$1 needs a value"
      case "$1" in
        --interface) iface=$2 ;;
        --policy) policy=$2 ;;
        --joystick) joystick=$2 ;;
        --domain) domain=$2 ;;
        --ros-domain) ros_domain=$2 ;;
        --config) config=$2 ;;
        --image) image=$2 ;;
      esac
      shift 2
      ;;
    --launch) mode=launch; shift ;;
    --dry-run) dry_run=1; shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[ -n "$iface" ] || die "--interface is required: the robot's network interface (eth0 on the Jetson)"
[[ "$iface" =~ ^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,14}$ ]] || die "'$iface' is not a network interface name"
[ -e "/sys/class/net/$iface" ] \
  || die "network interface '$iface' does not exist on this computer (have: $(ls /sys/class/net | tr '\n' ' '))"
[ -n "$policy" ] || die "--policy is required: the policy .onnx file"
[ -f "$policy" ] && [ -r "$policy" ] || die "policy file '$policy' does not exist or is not readable"
policy=$(cd "$(dirname "$policy")" && pwd)/$(basename "$policy")
case "$joystick" in joy | go2_remote | none) ;; *) die "--joystick must be joy, go2_remote or none" ;; esac
for n in "$domain" "$ros_domain"; do
  [[ "$n" =~ ^[0-9]{1,3}$ ]] && [ "$n" -le 232 ] || die "DDS domain ids are 0..232, got '$n'"
done

cmd=("${DOCKER:-docker}" run --rm --init --name moe-loco
  --runtime nvidia --network host --ipc host
  -e "MOE_LOCO_INTERFACE=$iface" -e "MOE_LOCO_DOMAIN=$domain" -e "ROS_DOMAIN_ID=$ros_domain"
  -e "MOE_LOCO_JOYSTICK=$joystick" -e "MOE_LOCO_MODE=$mode"
  -e "MOE_LOCO_POLICY=/policies/$(basename "$policy")"
  -v "$policy:/policies/$(basename "$policy"):ro")
if [ -n "$config" ]; then
  [ -f "$config" ] || die "config file '$config' does not exist"
  config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
  cmd+=(-e MOE_LOCO_CONFIG=/config/controller.yaml -v "$config:/config/controller.yaml:ro")
fi
if [ "$joystick" = joy ]; then  # gamepads: input devices, char major 13
  cmd+=(-v /dev/input:/dev/input --device-cgroup-rule "c 13:* rmw")
fi
if [ -t 0 ] && [ -t 1 ]; then cmd+=(-it); fi
cmd+=("$image" "$@")

if [ "$dry_run" = 1 ]; then
  printf '%q ' "${cmd[@]}"
  printf '\n'
  exit 0
fi
command -v "${cmd[0]}" >/dev/null || die "'${cmd[0]}' not found: run.sh needs Docker with the NVIDIA runtime"
exec "${cmd[@]}"
