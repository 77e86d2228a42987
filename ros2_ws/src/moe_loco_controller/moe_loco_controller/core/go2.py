"""Unitree Go2 constants, from ``reference/go2_facts.md`` (Unitree's URDF via MuJoCo Menagerie).

Every joint array here is in Unitree SDK order, the order of every array on the wire. A policy
states its own joint order in its metadata; map between the two by name
(:class:`moe_loco_controller.core.joint_order.JointOrder`), never by position.
"""

from __future__ import annotations

import numpy as np

NUM_MOTORS = 12
"""Motors the Go2 uses. LowState_/LowCmd_ carry 20 motor slots; slots 12..19 are unused."""
NUM_MOTOR_SLOTS = 20

LEGS = ("FR", "FL", "RR", "RL")
"""Leg prefixes in SDK order (front-right, front-left, rear-right, rear-left)."""
JOINT_KINDS = ("hip", "thigh", "calf")

JOINT_NAMES: tuple[str, ...] = tuple(f"{leg}_{kind}_joint" for leg in LEGS for kind in JOINT_KINDS)
"""The 12 joint names in SDK order: FR_hip_joint, FR_thigh_joint, FR_calf_joint, FL_hip_joint..."""

URDF_JOINT_NAMES: tuple[str, ...] = tuple(
    f"{leg}_{kind}_joint" for leg in ("FL", "FR", "RL", "RR") for kind in JOINT_KINDS
)
"""The URDF/Menagerie declaration order (FL, FR, RL, RR), which differs from SDK order."""

_HIP = (-1.0472, 1.0472)
_FRONT_THIGH = (-1.5708, 3.4907)
_REAR_THIGH = (-0.5236, 4.5379)
_CALF = (-2.7227, -0.83776)
_RANGES = {
    "FR": (_HIP, _FRONT_THIGH, _CALF),
    "FL": (_HIP, _FRONT_THIGH, _CALF),
    "RR": (_HIP, _REAR_THIGH, _CALF),
    "RL": (_HIP, _REAR_THIGH, _CALF),
}

JOINT_LOWER = np.array([_RANGES[leg][k][0] for leg in LEGS for k in range(3)])
"""Lower joint limits [rad], SDK order."""
JOINT_UPPER = np.array([_RANGES[leg][k][1] for leg in LEGS for k in range(3)])
"""Upper joint limits [rad], SDK order."""

TORQUE_LIMIT = np.array([23.7, 23.7, 45.43] * 4)
"""Motor torque limits [N m], SDK order."""
VELOCITY_LIMIT = np.array([30.1, 30.1, 15.7] * 4)
"""Joint velocity limits [rad/s] from the URDF, SDK order."""

DEFAULT_STANDING_POSE = np.array(
    # FR: hip -0.1 (right legs), thigh 0.8 (front), calf -1.5; FL: hip +0.1 (left legs) ...
    [-0.1, 0.8, -1.5, 0.1, 0.8, -1.5, -0.1, 1.0, -1.5, 0.1, 1.0, -1.5]
)
"""The legged_gym-family Go2 default pose [rad], SDK order. A policy's own default pose, from
its metadata, always takes precedence: this is only a fallback for tools and tests."""

KP_MAX = 200.0
"""[N m/rad] Highest position gain the command path sends. Unitree publishes no firmware figure
for the Go2's joint-side gains; the field's gains are 20-60 (stand 60, policies 20-40, see
``reference/go2_facts.md``), and at 200 a 0.23 rad error already asks for a calf's 45 N m."""
KD_MAX = 10.0
"""[N m s/rad] Highest velocity gain the command path sends (the field's: 0.5-5)."""
TARGET_MARGIN = 0.1
"""[rad] How far past a joint's range a position target may lie (PD targets are clamped to it)."""

FOOT_NAMES = tuple(f"{leg}_foot" for leg in LEGS)
"""Foot names in SDK order; ``foot_force`` on the wire is in this order."""

# ---------------------------------------------------------------------------- the wire
POS_STOP_F = 2.146e9
"""LowCmd_ q value of a motor that holds no position target (Unitree's PosStopF)."""
VEL_STOP_F = 16000.0
"""LowCmd_ dq value of a motor that holds no velocity target (Unitree's VelStopF)."""
MOTOR_MODE_SERVO = 0x01
LOWCMD_HEAD = (0xFE, 0xEF)
LOWCMD_LEVEL_FLAG = 0xFF  # low-level control

TOPIC_LOWSTATE = "rt/lowstate"
TOPIC_LOWCMD = "rt/lowcmd"
ROBOT_DOMAIN_ID = 0
"""DDS domain of the real robot (on its Ethernet interface)."""
SIM_DOMAIN_ID = 1
SIM_INTERFACE = "lo"
"""Unitree's simulator convention: domain 1 on the loopback interface."""

# Go2 remote (wireless_remote bytes): key bit positions.
REMOTE_KEYS = {
    "R1": 0,
    "L1": 1,
    "start": 2,
    "select": 3,
    "R2": 4,
    "L2": 5,
    "F1": 6,
    "F2": 7,
    "A": 8,
    "B": 9,
    "X": 10,
    "Y": 11,
    "up": 12,
    "right": 13,
    "down": 14,
    "left": 15,
}
