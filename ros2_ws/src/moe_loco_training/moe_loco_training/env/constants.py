"""Constants of the multitask environment: task names, link groups, observation sizes.

Robot figures (joint names, limits, default pose) stay in :mod:`moe_loco_controller.core.go2`;
this module only names what the environment adds on top of them.
"""

from __future__ import annotations

from moe_loco_controller.core import go2

QUADRUPEDAL = 0
BIPEDAL = 1
GAIT_NAMES = ("quadrupedal", "bipedal")
"""Gait index -> name (paper: g = 0 quadrupedal, g = 1 bipedal; the policy's one-hot order)."""

TASKS = (
    "bar_q",
    "pit_q",
    "baffle_q",
    "stair_q",
    "slope_q",
    "plane_q",
    "standup_b",
    "walk_b",
    "slope_b",
    "stair_b",
)
"""The paper's 9 tasks (Section III-A) plus quadrupedal plane walking, in config order."""

ADAPTATION_TASKS = ("tripod_q", "tripod_slope_q")
"""Tasks of the paper's adaptation experiment (Fig. 10): walking on three feet, one front leg held
up (``lift_leg``), on the plane and on slopes. Not in the default task set."""

PLANE_KIND = "plane"

LINK_BODIES: tuple[str, ...] = (
    "base",
    *(f"{leg}_{part}" for part in ("hip", "thigh", "calf") for leg in go2.LEGS),
)
"""The 13 links whose contact forces form i_t: base, hips, thighs, calves (SDK leg order each).
A calf's force includes its foot (the foot sphere is a geom of the calf body)."""

NUM_LINKS = len(LINK_BODIES)
IMPLICIT_DIM = 3 * NUM_LINKS
"""i_t: the net contact force [N] on each link, world frame, (fx, fy, fz) per link."""
EXPLICIT_DIM = 4
"""e_t: base linear velocity in the base frame (3) and the ground friction coefficient (1)."""

FRONT_LEGS = (0, 1)
REAR_LEGS = (2, 3)
"""Leg indices in SDK order (FR, FL, RR, RL)."""
HIP_JOINTS = (0, 3, 6, 9)
FRONT_HIPS = (0, 3)
REAR_HIPS = (6, 9)
FRONT_JOINTS = (0, 1, 2, 3, 4, 5)
REAR_RIGHT_JOINTS = (6, 7, 8)
REAR_LEFT_JOINTS = (9, 10, 11)

# Link indices into LINK_BODIES.
BASE_LINK = 0
HIP_LINKS = (1, 2, 3, 4)
THIGH_LINKS = (5, 6, 7, 8)
CALF_LINKS = (9, 10, 11, 12)
REAR_CALF_LINKS = (11, 12)
BIPEDAL_FORBIDDEN_LINKS = (BASE_LINK, *HIP_LINKS, *THIGH_LINKS, 9, 10)
"""Section III-B: in the bipedal gait every link but the rear feet and calves must stay off the
ground (after the grace time): base, hips, thighs and the front calves with their feet."""
QUADRUPEDAL_COLLISION_LINKS = (BASE_LINK, *HIP_LINKS, *THIGH_LINKS)
