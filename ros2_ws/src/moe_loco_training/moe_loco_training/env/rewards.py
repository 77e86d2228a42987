"""Table V of the paper: every reward term as a small named function of :class:`RewardInputs`.

Each term maps the batch's state to one value per robot, (N,), *before* its weight; the weights
(per gait, ``config/env.yaml`` ``rewards.weights``) default to Table V's. The quadrupedal total is
``r_track^quad + r_reg^quad``, the bipedal one ``r_track^bip + r_stand^bip + r_reg^bip``; a robot
gets the terms of the gait it is commanded (Section III-B).

Where Table V's typesetting is ambiguous, this is what is computed (and why):

- ``termination`` is the indicator of a termination (not a time-out); its weight -1 makes it -1.
- squared norms (``joint_vel``, ``joint_acc``, ``action_rate``): sums of squares, as legged_gym.
- ``ang_vel_stability`` (the formula is garbled): roll/pitch rate squared plus vertical base
  velocity squared, the usual "keep the base steady" pair.
- tracking uses the *heading frame*: the base velocity rotated by the yaw of the gait's forward
  axis (quadrupedal: body x; bipedal: body x minus body z, which stays horizontal-forward from
  lying to standing on the rear legs); the yaw rate is the world z angular velocity.
- the bipedal ``orientation`` term's weight is not legible in Table V; 1.0 here.
- ``base_height`` uses the terrain height under the base (the tiles' height profile) for
  ``mean h_i``; bipedal height factors are clipped to [0, 1].
- substep terms (``torque_exceed_limit(s)``, ``legs_energy_substeps``, bipedal ``joint_limits``)
  use every physics substep of the control step, averaged over the substeps (a rate per control
  step, whatever the substep count); every torque term uses the torque the motor applies (the PD
  law's after the motor limit). The exceed terms penalise what passes ``soft_torque_limit`` of
  the limit (a clipped torque never passes the limit itself; penalising the PD law's unclipped
  demand instead charged -0.1 per step for a 0.6 rad tracking error, five times the alive bonus).
- contact indicators use ``contact_threshold`` (1 N, Table V's "< 1").

Beyond Table V (the paper is silent; the recipe of legged_gym-class trainers, all configurable,
weights in :data:`RECIPE_WEIGHTS`): quadrupedal ``feet_air_time`` (+1.0, legged_gym's stepping
reward: each touchdown pays its air time minus 0.5 s, only while a motion is commanded) and
``action_rate`` (-0.01, legged_gym's); ``base_tilt`` (-10, |g_xy|^2: the ``orientation`` penalty
of legged_gym's flat ANYmal and of Go2 MJX recipes, 1.7-5x their linear tracking weight, here
1.4x; without it the CPU campaign's policy walked level for 4 s and then tipped over within
0.3 s); quadrupedal ``joint_acc`` at legged_gym's -2.5e-7 instead of Table V's -2e-6; and the
total of a step clipped at zero before the termination penalty (``rewards.only_positive``).
Two bipedal stepping terms, off by default: ``rear_feet_air_time`` (legged_gym's touchdown pay
on the rear feet) and ``rear_single_stance`` (IsaacLab's positive-only biped air time).

Every array of :class:`RewardInputs` is numpy (the C backend) or torch on the Warp device, one
kind per call: the terms are written once, against the array API (``env.arrays``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from moe_loco_training.env.arrays import Array, const, indices, namespace, take
from moe_loco_training.env.constants import (
    FRONT_HIPS,
    FRONT_JOINTS,
    QUADRUPEDAL_COLLISION_LINKS,
    REAR_HIPS,
    REAR_LEFT_JOINTS,
    REAR_LEGS,
    REAR_RIGHT_JOINTS,
)

if TYPE_CHECKING:
    from moe_loco_training.env.config import RewardConfig


@dataclass
class RewardInputs:
    """What the reward terms read, one row per robot (SDK joint and leg order)."""

    command: Array
    """(N, 3) vx, vy [m/s] in the heading frame, wz [rad/s]."""
    lin_vel: Array
    """(N, 3) base linear velocity in the heading frame (x forward, y left, z up) [m/s]."""
    yaw_rate: Array
    """(N,) world-z angular velocity of the base [rad/s]."""
    ang_vel_body: Array
    """(N, 3) base angular velocity in the base frame [rad/s]."""
    q: Array
    dq: Array
    ddq: Array
    """(N, 12) joint positions [rad], velocities [rad/s], accelerations over the control step."""
    q_default: Array
    q_min: Array
    q_max: Array
    torque_limit: Array
    """(12,) default pose, joint range, motor torque limits."""
    q_sub: Array
    dq_sub: Array
    tau_sub: Array
    tau_des_sub: Array
    """(N, S, 12) per physics substep: joint state at its start, applied torque, PD torque before
    the limit."""
    foot_force_z: Array
    """(N, 4) vertical contact force on each foot [N] (>= 0 pushing up)."""
    calf_force_z: Array
    """(N, 4) vertical contact force on each calf's shank, foot excluded [N]."""
    link_force: Array
    """(N, 13, 3) net contact force on each link (constants.LINK_BODIES) [N]."""
    base_height: Array
    """(N,) base height above the terrain under it [m]."""
    up_cos: Array
    """(N,) cos(theta): the body x axis' world-z component (1: nose straight up)."""
    base_up_z: Array
    """(N,) the body z axis' world-z component (1: base level, the cosine of its tilt)."""
    gait_time: Array
    """(N,) time since the current gait command began [s]."""
    action: Array
    last_action: Array
    """(N, 12) this and the previous action (clipped)."""
    terminated: Array
    """(N,) bool: terminated this step (not a time-out)."""
    feet_air_time: Array | None = None
    """(N, 4) the air time [s] that ended with a touchdown this step, 0 for other feet."""
    lifted_leg: Array | None = None
    """(N,) SDK index of the leg the robot's task holds up (-1 or None: none; Fig. 10)."""
    feet_mode_time: Array | None = None
    """(N, 4) how long each foot has been in its current mode [s]: in contact, its contact
    time; in the air, its air time (the same contact filter as ``feet_air_time``)."""
    feet_in_contact: Array | None = None
    """(N, 4) bool: each foot in contact (now or at the last step: the touchdown filter)."""


Term = Callable[[RewardInputs, "RewardConfig"], Array]


def _sq(x: Array) -> Array:
    xp = namespace(x)
    return xp.sum(xp.square(x), axis=-1)


def _height_factor(s: RewardInputs, c: RewardConfig) -> Array:
    xp = namespace(s.q)
    return xp.clip((s.base_height - c.bipedal_z_min) / (c.bipedal_z_max - c.bipedal_z_min), 0, 1)


# ----------------------------------------------------------------------------- shared terms
def tracking_lin_vel(s: RewardInputs, c: RewardConfig, sigma: float | Array | None = None) -> Array:
    """exp(-|v_cmd,xy - v_xy|^2 / sigma) (sigma: ``tracking_sigma`` unless given; per robot
    if an array)."""
    xp = namespace(s.q)
    sigma = c.tracking_sigma if sigma is None else sigma
    return xp.exp(-_sq(s.command[:, :2] - s.lin_vel[:, :2]) / sigma)


def bipedal_sigma(c: RewardConfig) -> float:
    """The bipedal gait's linear-velocity tracking sigma."""
    return c.tracking_sigma if c.bipedal_tracking_sigma is None else c.bipedal_tracking_sigma


def tracking_ang_vel(s: RewardInputs, c: RewardConfig) -> Array:
    """exp(-(wz_cmd - wz)^2 / sigma_ang)."""
    xp = namespace(s.q)
    return xp.exp(-xp.square(s.command[:, 2] - s.yaw_rate) / c.ang_tracking_sigma)


def termination(s: RewardInputs, c: RewardConfig) -> Array:
    """1 on the step that terminates (time-outs excluded)."""
    xp = namespace(s.q)
    return xp.astype(s.terminated, xp.float64)


def alive(s: RewardInputs, c: RewardConfig) -> Array:
    """1 every step."""
    return namespace(s.q).ones_like(s.q[:, 0])


def joint_pos(s: RewardInputs, c: RewardConfig) -> Array:
    """sum (q - q_default)^2."""
    return _sq(s.q - s.q_default)


def joint_vel(s: RewardInputs, c: RewardConfig) -> Array:
    """sum dq^2."""
    return _sq(s.dq)


def joint_acc(s: RewardInputs, c: RewardConfig) -> Array:
    """sum ddq^2."""
    return _sq(s.ddq)


def front_hip_pos(s: RewardInputs, c: RewardConfig) -> Array:
    """sum over the front hips of (q - q_default)^2."""
    idx = take(FRONT_HIPS, s.q)
    return _sq(s.q[:, idx] - s.q_default[idx])


def rear_hip_pos(s: RewardInputs, c: RewardConfig) -> Array:
    """sum over the rear hips of (q - q_default)^2."""
    idx = take(REAR_HIPS, s.q)
    return _sq(s.q[:, idx] - s.q_default[idx])


def torque_exceed_limit(s: RewardInputs, c: RewardConfig) -> Array:
    """Mean over substeps of the sum over joints of max(|tau| - soft * tau_limit, 0), tau the
    applied torque."""
    xp = namespace(s.q)
    excess = xp.clip(xp.abs(s.tau_sub) - c.soft_torque_limit * s.torque_limit, 0.0, None)
    return xp.mean(xp.sum(excess, axis=2), axis=1)


def feet_air_time(s: RewardInputs, c: RewardConfig) -> Array:
    """sum over touchdowns of (air time - target), while a velocity is commanded."""
    return _air_time_pay(s, s.feet_air_time, c.feet_air_time_target)


def _moving(s: RewardInputs) -> Array:
    """(N,) bool: a motion is commanded (|v_xy| or |wz| above 0.1)."""
    xp = namespace(s.q)
    return (xp.linalg.vector_norm(s.command[:, :2], axis=1) > 0.1) | (xp.abs(s.command[:, 2]) > 0.1)


def _air_time_pay(s: RewardInputs, air: Array | None, target: float) -> Array:
    """sum over the touchdowns in ``air`` (N, feet) of (air time - target), while moving."""
    xp = namespace(s.q)
    if air is None:
        return xp.zeros_like(s.q[:, 0])
    pay = xp.sum((air - target) * (air > 0.0), axis=1)
    return pay * _moving(s)


def rear_feet_air_time(s: RewardInputs, c: RewardConfig) -> Array:
    """``feet_air_time`` over the rear feet only: the bipedal gait's stepping reward (not in
    Table V; off unless a configuration weights it)."""
    air = None if s.feet_air_time is None else s.feet_air_time[:, take(REAR_LEGS, s.q)]
    return _air_time_pay(s, air, c.rear_feet_air_time_target)


def rear_single_stance(s: RewardInputs, c: RewardConfig) -> Array:
    """The time the robot has spent in its current single stance on one rear foot, capped at
    ``rear_single_stance_max_s``: min over the two rear feet of their current mode time (the
    stance foot's contact time, the swing foot's air time) while exactly one of them is in
    contact, upright (``cos theta`` above the bipedal threshold) and commanded to move.
    IsaacLab's ``feet_air_time_positive_biped`` (its humanoid recipes), the bipedal gait's
    phase-free stepping reward; unlike ``rear_feet_air_time`` it never charges a short step.
    Not in Table V; off unless a configuration weights it."""
    xp = namespace(s.q)
    if s.feet_mode_time is None or s.feet_in_contact is None:
        return xp.zeros_like(s.q[:, 0])
    rear = take(REAR_LEGS, s.q)
    single = xp.sum(xp.astype(s.feet_in_contact[:, rear], xp.int64), axis=1) == 1
    held = xp.clip(xp.min(s.feet_mode_time[:, rear], axis=1), None, c.rear_single_stance_max_s)
    upright = s.up_cos > c.bipedal_cos_threshold
    return held * single * upright * _moving(s)


# ----------------------------------------------------------------------------- quadrupedal
def ang_vel_stability(s: RewardInputs, c: RewardConfig) -> Array:
    """wx^2 + wy^2 (base frame) + vz^2."""
    xp = namespace(s.q)
    return _sq(s.ang_vel_body[:, :2]) + xp.square(s.lin_vel[:, 2])


def base_tilt(s: RewardInputs, c: RewardConfig) -> Array:
    """1 - (body z . world z)^2: sin^2 of the base's tilt, |g_xy|^2 of the projected gravity
    (legged_gym's ``orientation``)."""
    xp = namespace(s.q)
    return 1.0 - xp.square(s.base_up_z)


def feet_in_air(s: RewardInputs, c: RewardConfig) -> Array:
    """1 if all four feet are off the ground, plus 1 per leg resting on its calf, not its foot."""
    xp = namespace(s.q)
    air = s.foot_force_z < c.contact_threshold
    calf = s.calf_force_z >= c.contact_threshold
    return xp.astype(xp.all(air, axis=1), xp.float64) + xp.sum(
        xp.astype(air & calf, xp.float64), axis=1
    )


def base_height(s: RewardInputs, c: RewardConfig) -> Array:
    """(z_base - terrain height - h_target)^2."""
    xp = namespace(s.q)
    return xp.square(s.base_height - c.base_height_target)


def balance(s: RewardInputs, c: RewardConfig) -> Array:
    """|F_0 + F_2 - F_1 - F_3| of the feet's vertical forces (right feet minus left feet)."""
    xp = namespace(s.q)
    f = s.foot_force_z
    return xp.abs(f[:, 0] + f[:, 2] - f[:, 1] - f[:, 3])


def joint_limit(s: RewardInputs, c: RewardConfig) -> Array:
    """Number of joints outside their range."""
    xp = namespace(s.q)
    return xp.sum(xp.astype((s.q < s.q_min) | (s.q > s.q_max), xp.float64), axis=1)


# ----------------------------------------------------------------------------- three legs
LIFTED_LEG_POSE = np.array([0.0, 0.3, -2.4])
"""Hip, thigh, calf [rad] of a front leg held up and folded (the foot under the shoulder)."""


def _lifted(s: RewardInputs) -> tuple[Array, Array]:
    """(rows of robots that hold a leg up, that leg's index)."""
    if s.lifted_leg is None:
        none = const([], s.q, "int64")
        return none, none
    rows = indices(s.lifted_leg >= 0)
    return rows, s.lifted_leg[rows]


def lifted_foot_air(s: RewardInputs, c: RewardConfig) -> Array:
    """1 while the held-up leg touches nothing (neither its foot nor its shank); 0 for robots
    whose task holds no leg up."""
    xp = namespace(s.q)
    out = xp.zeros_like(s.q[:, 0])
    rows, leg = _lifted(s)
    free = (s.foot_force_z[rows, leg] < c.contact_threshold) & (
        s.calf_force_z[rows, leg] < c.contact_threshold
    )
    out[rows] = xp.astype(free, out.dtype)
    return out


def lifted_leg_pose(s: RewardInputs, c: RewardConfig) -> Array:
    """sum over the held-up leg's joints of (q - held-up pose)^2; 0 for the other robots."""
    out = namespace(s.q).zeros_like(s.q[:, 0])
    rows, leg = _lifted(s)
    joints = leg[:, None] * 3 + const([0, 1, 2], leg)
    out[rows] = _sq(s.q[rows[:, None], joints] - const(LIFTED_LEG_POSE, s.q))
    return out


# ----------------------------------------------------------------------------- bipedal
def orientation(s: RewardInputs, c: RewardConfig) -> Array:
    """(0.5 cos(theta) + 0.5)^2, theta between the body x axis and world up."""
    xp = namespace(s.q)
    return xp.square(0.5 * s.up_cos + 0.5)


def base_height_linear(s: RewardInputs, c: RewardConfig) -> Array:
    """clip((z_base - z_min) / (z_max - z_min), 0, 1)."""
    return _height_factor(s, c)


def bipedal_tracking_lin_vel(s: RewardInputs, c: RewardConfig) -> Array:
    """tracking_lin_vel (sigma: ``bipedal_tracking_sigma``) * 1{cos theta > threshold} * height
    factor."""
    upright = s.up_cos > c.bipedal_cos_threshold
    return tracking_lin_vel(s, c, bipedal_sigma(c)) * upright * _height_factor(s, c)


def bipedal_tracking_ang_vel(s: RewardInputs, c: RewardConfig) -> Array:
    """tracking_ang_vel * 1{cos theta > threshold} * height factor."""
    upright = s.up_cos > c.bipedal_cos_threshold
    return tracking_ang_vel(s, c) * upright * _height_factor(s, c)


def rear_air(s: RewardInputs, c: RewardConfig) -> Array:
    """1 if both rear feet are in the air, plus 1 per rear leg on its calf, not its foot."""
    xp = namespace(s.q)
    rear = take(REAR_LEGS, s.q)
    air = s.foot_force_z[:, rear] < c.contact_threshold
    calf = s.calf_force_z[:, rear] >= c.contact_threshold
    return xp.astype(xp.all(air, axis=1), xp.float64) + xp.sum(
        xp.astype(air & calf, xp.float64), axis=1
    )


def rear_pos_balance(s: RewardInputs, c: RewardConfig) -> Array:
    """|q_rear_left - mirror(q_rear_right)|: hips mirrored (sign), thighs and calves equal."""
    xp = namespace(s.q)
    left = s.q[:, take(REAR_LEFT_JOINTS, s.q)]
    right = s.q[:, take(REAR_RIGHT_JOINTS, s.q)] * const([-1.0, 1.0, 1.0], s.q)
    return xp.sqrt(_sq(left - right))


def _after_allow(s: RewardInputs, c: RewardConfig) -> Array:
    xp = namespace(s.q)
    return xp.astype(s.gait_time > c.front_allow_s, xp.float64)


def front_joint_pos(s: RewardInputs, c: RewardConfig) -> Array:
    """1{t > T_allow} sum over the front legs' joints of (q - q_default)^2."""
    idx = take(FRONT_JOINTS, s.q)
    return _after_allow(s, c) * _sq(s.q[:, idx] - s.q_default[idx])


def front_joint_vel(s: RewardInputs, c: RewardConfig) -> Array:
    """1{t > T_allow} sum over the front legs' joints of dq^2."""
    return _after_allow(s, c) * _sq(s.dq[:, take(FRONT_JOINTS, s.q)])


def front_joint_acc(s: RewardInputs, c: RewardConfig) -> Array:
    """1{t > T_allow} sum over the front legs' joints of ddq^2."""
    return _after_allow(s, c) * _sq(s.ddq[:, take(FRONT_JOINTS, s.q)])


def legs_energy_substeps(s: RewardInputs, c: RewardConfig) -> Array:
    """Mean over substeps of sum over joints of (tau dq)^2."""
    xp = namespace(s.q)
    return xp.mean(xp.sum(xp.square(s.tau_sub * s.dq_sub), axis=2), axis=1)


def joint_limits_substeps(s: RewardInputs, c: RewardConfig) -> Array:
    """Mean over substeps of the number of joints outside their range."""
    xp = namespace(s.q)
    out = (s.q_sub < s.q_min) | (s.q_sub > s.q_max)
    return xp.mean(xp.sum(xp.astype(out, xp.float64), axis=2), axis=1)


def collision(s: RewardInputs, c: RewardConfig) -> Array:
    """Number of links among base, hips and thighs with a contact force above the threshold."""
    xp = namespace(s.q)
    f = xp.linalg.vector_norm(s.link_force[:, take(QUADRUPEDAL_COLLISION_LINKS, s.q)], axis=2)
    return xp.sum(xp.astype(f > c.contact_threshold, xp.float64), axis=1)


def action_rate(s: RewardInputs, c: RewardConfig) -> Array:
    """sum (a_t - a_{t-1})^2."""
    return _sq(s.action - s.last_action)


# ----------------------------------------------------------------------------- the tables
QUADRUPEDAL_TERMS: Mapping[str, Term] = MappingProxyType(
    {
        "tracking_lin_vel": tracking_lin_vel,
        "tracking_ang_vel": tracking_ang_vel,
        "termination": termination,
        "alive": alive,
        "joint_pos": joint_pos,
        "joint_vel": joint_vel,
        "joint_acc": joint_acc,
        "ang_vel_stability": ang_vel_stability,
        "feet_in_air": feet_in_air,
        "front_hip_pos": front_hip_pos,
        "rear_hip_pos": rear_hip_pos,
        "base_height": base_height,
        "balance": balance,
        "joint_limit": joint_limit,
        "torque_exceed_limit": torque_exceed_limit,
        "feet_air_time": feet_air_time,
        "action_rate": action_rate,
        "base_tilt": base_tilt,
        "lifted_foot_air": lifted_foot_air,
        "lifted_leg_pose": lifted_leg_pose,
    }
)
BIPEDAL_TERMS: Mapping[str, Term] = MappingProxyType(
    {
        "orientation": orientation,
        "base_height_linear": base_height_linear,
        "tracking_lin_vel": bipedal_tracking_lin_vel,
        "tracking_ang_vel": bipedal_tracking_ang_vel,
        "termination": termination,
        "alive": alive,
        "rear_air": rear_air,
        "front_hip_pos": front_hip_pos,
        "rear_hip_pos": rear_hip_pos,
        "rear_pos_balance": rear_pos_balance,
        "front_joint_pos": front_joint_pos,
        "front_joint_vel": front_joint_vel,
        "front_joint_acc": front_joint_acc,
        "legs_energy_substeps": legs_energy_substeps,
        "torque_exceed_limits": torque_exceed_limit,
        "joint_limits": joint_limits_substeps,
        "collision": collision,
        "action_rate": action_rate,
        "joint_vel": joint_vel,
        "joint_acc": joint_acc,
        "rear_feet_air_time": rear_feet_air_time,
        "rear_single_stance": rear_single_stance,
    }
)
TERMS: Mapping[str, Mapping[str, Term]] = MappingProxyType(
    {"quadrupedal": QUADRUPEDAL_TERMS, "bipedal": BIPEDAL_TERMS}
)
"""Per gait name, term name -> function."""

TABLE_V_WEIGHTS: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        "quadrupedal": MappingProxyType(
            {
                "tracking_lin_vel": 7.0,
                "tracking_ang_vel": 2.5,
                "termination": -1.0,
                "alive": 1.0,
                "joint_pos": -0.05,
                "joint_vel": -0.002,
                "joint_acc": -2e-6,
                "ang_vel_stability": -0.2,
                "feet_in_air": -0.05,
                "front_hip_pos": -0.2,
                "rear_hip_pos": -0.5,
                "base_height": -0.1,
                "balance": -2e-5,
                "joint_limit": -0.01,
                "torque_exceed_limit": -2.0,
            }
        ),
        "bipedal": MappingProxyType(
            {
                "orientation": 1.0,
                "base_height_linear": 0.8,
                "tracking_lin_vel": 3.0,
                "tracking_ang_vel": 2.5,
                "termination": -1.0,
                "alive": 1.0,
                "rear_air": -0.5,
                "front_hip_pos": -0.1,
                "rear_hip_pos": -0.18,
                "rear_pos_balance": -0.05,
                "front_joint_pos": -0.2,
                "front_joint_vel": -1e-3,
                "front_joint_acc": -2e-6,
                "legs_energy_substeps": -1e-6,
                "torque_exceed_limits": -2.0,
                "joint_limits": -0.06,
                "collision": -2.0,
                "action_rate": -0.03,
                "joint_vel": -2e-3,
                "joint_acc": -3e-6,
            }
        ),
    }
)
"""Table V's weights (the bipedal orientation weight is not legible there: 1.0)."""

RECIPE_CHANGES: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        "quadrupedal": MappingProxyType(
            {
                "feet_air_time": 1.0,
                "action_rate": -0.01,
                "joint_acc": -2.5e-7,
                "base_tilt": -10.0,
            }
        ),
        "bipedal": MappingProxyType({}),
    }
)
"""What the recipe adds to or changes in Table V (legged_gym's values; see the module doc)."""

RECIPE_WEIGHTS: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        g: MappingProxyType({**TABLE_V_WEIGHTS[g], **RECIPE_CHANGES[g]})
        for g in ("quadrupedal", "bipedal")
    }
)
"""The default weights: Table V with :data:`RECIPE_CHANGES`."""


def default_weights() -> Mapping[str, Mapping[str, float]]:
    """A copy of :data:`RECIPE_WEIGHTS`."""
    return MappingProxyType({g: MappingProxyType(dict(w)) for g, w in RECIPE_WEIGHTS.items()})


def compute_rewards(
    s: RewardInputs, gait: Array, config: RewardConfig, dt: float
) -> tuple[Array, dict[str, Array]]:
    """Total reward (N,) and every weighted term, ``"<gait>/<term>"`` -> (N,) (zero for robots
    of the other gait). Weights are multiplied by ``dt`` when ``config.scale_by_dt``. With
    ``config.only_positive`` the total without the termination terms is clipped at zero, then
    the termination terms are added (the logged terms stay unclipped)."""
    xp = namespace(s.q)
    total = xp.zeros_like(s.q[:, 0])
    ending = xp.zeros_like(s.q[:, 0])
    terms: dict[str, Array] = {}
    scale = dt if config.scale_by_dt else 1.0
    for g, name in enumerate(("quadrupedal", "bipedal")):
        mask = xp.astype(gait == g, xp.float64)
        for term, weight in config.weights[name].items():
            if weight == 0.0:
                continue
            value = TERMS[name][term](s, config) * (weight * scale) * mask
            terms[f"{name}/{term}"] = value
            if term == "termination":
                ending += value
            else:
                total += value
    if config.only_positive:
        total = xp.clip(total, 0.0, None)
    return total + ending, terms
