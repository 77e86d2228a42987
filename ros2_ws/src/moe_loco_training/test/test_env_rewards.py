"""Every Table V reward term on crafted states: each test sets up the quantity the term reads
and checks the value against a hand computation (and that the neutral state gives the other)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from moe_loco_controller.core import go2
from moe_loco_training.env import rewards as rw
from moe_loco_training.env.config import RewardConfig

C = RewardConfig()
Q0 = go2.DEFAULT_STANDING_POSE.copy()


def inputs(n: int = 1, s: int = 4, **kw) -> rw.RewardInputs:
    """A neutral state: standing still in the default pose, feet loaded, nothing else touching."""
    base = dict(
        command=np.zeros((n, 3)),
        lin_vel=np.zeros((n, 3)),
        yaw_rate=np.zeros(n),
        ang_vel_body=np.zeros((n, 3)),
        q=np.tile(Q0, (n, 1)),
        dq=np.zeros((n, 12)),
        ddq=np.zeros((n, 12)),
        q_default=Q0,
        q_min=go2.JOINT_LOWER,
        q_max=go2.JOINT_UPPER,
        torque_limit=go2.TORQUE_LIMIT,
        q_sub=np.tile(Q0, (n, s, 1)),
        dq_sub=np.zeros((n, s, 12)),
        tau_sub=np.zeros((n, s, 12)),
        tau_des_sub=np.zeros((n, s, 12)),
        foot_force_z=np.full((n, 4), 37.0),
        calf_force_z=np.zeros((n, 4)),
        link_force=np.zeros((n, 13, 3)),
        base_height=np.full(n, 0.30),
        up_cos=np.zeros(n),
        base_up_z=np.ones(n),
        gait_time=np.full(n, 5.0),
        action=np.zeros((n, 12)),
        last_action=np.zeros((n, 12)),
        terminated=np.zeros(n, dtype=bool),
    )
    base.update(kw)
    return rw.RewardInputs(**base)


def val(fn, **kw) -> float:
    return float(fn(inputs(**kw), C)[0])


def test_every_table_v_term_is_registered_with_its_weight():
    additions = {"feet_air_time", "action_rate", "base_tilt"}
    three_legged = {"lifted_foot_air", "lifted_leg_pose"}  # Fig. 10's task: off by default
    assert set(rw.QUADRUPEDAL_TERMS) == set(rw.TABLE_V_WEIGHTS["quadrupedal"]) | additions | (
        three_legged
    )
    assert not three_legged & set(rw.RECIPE_WEIGHTS["quadrupedal"])
    stepping = {"rear_feet_air_time", "rear_single_stance"}  # bipedal stepping: off by default
    assert set(rw.BIPEDAL_TERMS) == set(rw.TABLE_V_WEIGHTS["bipedal"]) | stepping
    assert not stepping & set(rw.RECIPE_WEIGHTS["bipedal"])
    assert len(rw.TABLE_V_WEIGHTS["quadrupedal"]) == 15 and len(rw.TABLE_V_WEIGHTS["bipedal"]) == 20
    # the recipe's defaults: Table V plus the stated changes, nothing else
    recipe = rw.RECIPE_WEIGHTS["quadrupedal"]
    changed = {k for k in recipe if recipe[k] != rw.TABLE_V_WEIGHTS["quadrupedal"].get(k)}
    assert changed == {"feet_air_time", "action_rate", "joint_acc", "base_tilt"}
    assert dict(rw.RECIPE_WEIGHTS["bipedal"]) == dict(rw.TABLE_V_WEIGHTS["bipedal"])
    w = rw.TABLE_V_WEIGHTS
    assert w["quadrupedal"]["tracking_lin_vel"] == 7.0 and w["bipedal"]["tracking_lin_vel"] == 3.0
    assert w["quadrupedal"]["torque_exceed_limit"] == -2.0 and w["bipedal"]["collision"] == -2.0


# ----------------------------------------------------------------------------- tracking
def test_tracking_lin_vel():
    assert val(rw.tracking_lin_vel) == 1.0  # zero command, standing still
    v = np.array([[0.5, 0.0, 0.0]])
    assert val(rw.tracking_lin_vel, command=v) == pytest.approx(math.exp(-0.25 / 0.25))
    # vz does not count, vy does
    assert val(rw.tracking_lin_vel, lin_vel=np.array([[0.0, 0.0, 3.0]])) == 1.0
    got = val(rw.tracking_lin_vel, lin_vel=np.array([[0.0, 0.3, 0.0]]))
    assert got == pytest.approx(math.exp(-0.09 / 0.25))


def test_tracking_ang_vel():
    assert val(rw.tracking_ang_vel) == 1.0
    got = val(rw.tracking_ang_vel, command=np.array([[0.0, 0.0, 1.0]]), yaw_rate=np.array([0.5]))
    assert got == pytest.approx(math.exp(-0.25 / 0.25))


def test_bipedal_tracking_needs_upright_and_height():
    cmd = np.array([[0.3, 0.0, 0.0]])
    lv = np.array([[0.3, 0.0, 0.0]])
    # lying (cos 0) gets nothing even when the velocity matches
    assert val(rw.bipedal_tracking_lin_vel, command=cmd, lin_vel=lv) == 0.0
    up = dict(command=cmd, lin_vel=lv, up_cos=np.array([0.99]))
    assert val(rw.bipedal_tracking_lin_vel, base_height=np.array([0.55]), **up) == 1.0
    half = val(rw.bipedal_tracking_lin_vel, base_height=np.array([0.425]), **up)
    assert half == pytest.approx(0.5)  # height factor (0.425 - 0.30) / 0.25
    assert val(rw.bipedal_tracking_lin_vel, base_height=np.array([0.2]), **up) == 0.0
    assert val(rw.bipedal_tracking_lin_vel, base_height=np.array([0.9]), **up) == 1.0  # clipped
    ang = dict(up_cos=np.array([0.99]), base_height=np.array([0.55]))
    assert val(rw.bipedal_tracking_ang_vel, **ang) == 1.0
    assert (
        val(rw.bipedal_tracking_ang_vel, up_cos=np.array([0.9]), base_height=np.array([0.55])) == 0
    )


def test_bipedal_tracking_sigma_is_its_own_and_defaults_to_the_shared_one():
    """A robot standing still under a 0.3 m/s bipedal command: 0.70 of the term at the shared
    0.25, 0.17 at a bipedal sigma of 0.05; the quadrupedal term keeps the shared sigma."""
    still = dict(
        command=np.array([[0.3, 0.0, 0.0]]), up_cos=np.array([0.99]), base_height=np.array([0.55])
    )
    assert val(rw.bipedal_tracking_lin_vel, **still) == pytest.approx(math.exp(-0.09 / 0.25))
    tight = RewardConfig(bipedal_tracking_sigma=0.05)
    got = float(rw.bipedal_tracking_lin_vel(inputs(**still), tight)[0])
    assert got == pytest.approx(math.exp(-0.09 / 0.05))
    quad = float(rw.tracking_lin_vel(inputs(**still), tight)[0])
    assert quad == pytest.approx(math.exp(-0.09 / 0.25))
    with pytest.raises(ValueError, match="bipedal_tracking_sigma"):
        RewardConfig(bipedal_tracking_sigma=0.0)


def test_termination_and_alive():
    assert val(rw.termination) == 0.0
    assert val(rw.termination, terminated=np.array([True])) == 1.0
    assert val(rw.alive) == 1.0


# ----------------------------------------------------------------------------- joints
def test_joint_pos_vel_acc():
    q = Q0 + 0.1
    assert val(rw.joint_pos) == 0.0
    assert val(rw.joint_pos, q=q[None]) == pytest.approx(12 * 0.01)
    assert val(rw.joint_vel, dq=np.full((1, 12), 2.0)) == pytest.approx(48.0)
    assert val(rw.joint_acc, ddq=np.full((1, 12), 10.0)) == pytest.approx(1200.0)


def test_front_and_rear_hip_pos():
    q = Q0.copy()
    q[[0, 3]] += 0.2  # front hips FR, FL
    assert val(rw.front_hip_pos, q=q[None]) == pytest.approx(0.08)
    assert val(rw.rear_hip_pos, q=q[None]) == 0.0
    q = Q0.copy()
    q[[6, 9]] -= 0.3  # rear hips RR, RL
    assert val(rw.rear_hip_pos, q=q[None]) == pytest.approx(0.18)
    assert val(rw.front_hip_pos, q=q[None]) == 0.0
    q = Q0.copy()
    q[[1, 2]] += 1.0  # thigh/calf are not hips
    assert val(rw.front_hip_pos, q=q[None]) == 0.0


def test_joint_limit_counts_joints_out_of_range():
    assert val(rw.joint_limit) == 0.0
    q = Q0.copy()
    q[2] = go2.JOINT_LOWER[2] - 0.01
    q[7] = go2.JOINT_UPPER[7] + 0.01
    assert val(rw.joint_limit, q=q[None]) == 2.0


def test_joint_limits_substeps_is_the_mean_over_substeps():
    q_sub = np.tile(Q0, (1, 4, 1))
    q_sub[0, :2, 5] = go2.JOINT_UPPER[5] + 0.1  # two of four substeps out of range
    assert val(rw.joint_limits_substeps, q_sub=q_sub) == pytest.approx(0.5)


def test_torque_exceed_limit_reads_the_applied_torque_past_the_soft_limit():
    soft = C.soft_torque_limit
    tau = np.zeros((1, 4, 12))
    tau[0, :, 0] = 23.7  # hip at its limit (applied torques never pass it): 4 substeps
    tau[0, 1, 2] = -45.43  # calf at its limit, once
    tau[0, 2, 1] = 20.0  # within 90 % of the limit
    # the PD law's demand before the motor limit does not count (it asked for 100 N.m)
    demand = np.full((1, 4, 12), 100.0)
    got = val(rw.torque_exceed_limit, tau_sub=tau, tau_des_sub=demand)
    expected = (4 * 23.7 * (1 - soft) + 45.43 * (1 - soft)) / 4  # mean over substeps
    assert got == pytest.approx(expected)
    assert val(rw.torque_exceed_limit, tau_des_sub=demand) == 0.0


def test_feet_air_time_pays_touchdowns_after_long_swings_while_moving():
    air = np.array([[0.7, 0.0, 0.3, 0.0]])  # two touchdowns: +0.2 and -0.2 around 0.5 s
    moving = np.array([[0.5, 0.0, 0.0]])
    assert val(rw.feet_air_time, feet_air_time=air, command=moving) == pytest.approx(0.0)
    air = np.array([[0.8, 0.0, 0.0, 0.6]])
    assert val(rw.feet_air_time, feet_air_time=air, command=moving) == pytest.approx(0.4)
    turning = np.array([[0.0, 0.0, 0.5]])
    assert val(rw.feet_air_time, feet_air_time=air, command=turning) == pytest.approx(0.4)
    # standing still (zero command) is not paid for stepping
    assert val(rw.feet_air_time, feet_air_time=air) == 0.0
    assert val(rw.feet_air_time) == 0.0  # no touchdown information


def test_rear_feet_air_time_pays_rear_touchdowns_only_while_moving():
    air = np.array([[0.9, 0.9, 0.8, 0.0]])  # front feet "land" too: they do not count
    cmd = np.array([[0.3, 0.0, 0.0]])
    got = val(rw.rear_feet_air_time, feet_air_time=air, command=cmd)
    assert got == pytest.approx(0.8 - C.rear_feet_air_time_target)
    assert val(rw.rear_feet_air_time, feet_air_time=air) == 0.0  # standing command
    short = np.array([[0.0, 0.0, 0.2, 0.3]])
    got = val(rw.rear_feet_air_time, feet_air_time=short, command=cmd)
    assert got == pytest.approx(0.5 - 2 * C.rear_feet_air_time_target)  # short steps cost
    shuffle = RewardConfig(rear_feet_air_time_target=0.2)
    got = float(rw.rear_feet_air_time(inputs(feet_air_time=short, command=cmd), shuffle)[0])
    assert got == pytest.approx(0.5 - 0.4)


def test_rear_single_stance_pays_the_held_single_stance_upright_and_moving():
    cmd = np.array([[0.3, 0.0, 0.0]])
    # FR, FL, RR, RL: RR in contact for 0.3 s, RL in the air for 0.25 s (front feet ignored)
    mode = np.array([[0.0, 0.0, 0.3, 0.25]])
    contact = np.array([[True, True, True, False]])
    up = np.ones(1)
    kw = dict(feet_mode_time=mode, feet_in_contact=contact, command=cmd, up_cos=up)
    assert val(rw.rear_single_stance, **kw) == pytest.approx(0.25)  # the shorter of the two
    long = np.array([[0.0, 0.0, 2.0, 0.9]])
    got = val(rw.rear_single_stance, **{**kw, "feet_mode_time": long})
    assert got == pytest.approx(C.rear_single_stance_max_s)  # capped
    both = np.array([[False, False, True, True]])
    assert val(rw.rear_single_stance, **{**kw, "feet_in_contact": both}) == 0.0  # double stance
    none = np.zeros((1, 4), dtype=bool)
    assert val(rw.rear_single_stance, **{**kw, "feet_in_contact": none}) == 0.0  # flight
    assert val(rw.rear_single_stance, **{**kw, "command": np.zeros((1, 3))}) == 0.0  # standing
    assert val(rw.rear_single_stance, **{**kw, "up_cos": np.zeros(1)}) == 0.0  # not upright
    assert val(rw.rear_single_stance) == 0.0  # no contact information
    with pytest.raises(ValueError, match="rear_single_stance_max_s"):
        RewardConfig(rear_single_stance_max_s=0.0)


def test_only_positive_clips_the_total_before_the_termination_penalty():
    s = inputs(n=2, q=np.tile(Q0 + 1.0, (2, 1)), terminated=np.array([False, True]))
    gait = np.zeros(2, dtype=np.int64)
    w = {"quadrupedal": {"alive": 1.0, "joint_pos": -1.0, "termination": -1.0}, "bipedal": {}}
    raw = RewardConfig(weights=w, scale_by_dt=False, only_positive=False)
    clipped = RewardConfig(weights=w, scale_by_dt=False, only_positive=True)
    total_raw, _ = rw.compute_rewards(s, gait, raw, dt=0.02)
    total, terms_c = rw.compute_rewards(s, gait, clipped, dt=0.02)
    assert total_raw.tolist() == pytest.approx([1.0 - 12.0, 1.0 - 12.0 - 1.0])
    assert total.tolist() == pytest.approx([0.0, -1.0])  # clipped at 0, then the termination
    assert terms_c["quadrupedal/joint_pos"][0] == pytest.approx(-12.0)  # logged unclipped


def test_legs_energy_substeps():
    tau = np.zeros((1, 4, 12))
    dq = np.zeros((1, 4, 12))
    tau[0, :, 3], dq[0, :, 3] = 10.0, 2.0  # (20)^2 every substep
    tau[0, 0, 4], dq[0, 0, 4] = 5.0, 2.0  # (10)^2 in one substep
    assert val(rw.legs_energy_substeps, tau_sub=tau, dq_sub=dq) == pytest.approx(400 + 100 / 4)


def test_action_rate():
    a = np.full((1, 12), 0.5)
    assert val(rw.action_rate, action=a) == pytest.approx(3.0)
    assert val(rw.action_rate, action=a, last_action=a) == 0.0


# ----------------------------------------------------------------------------- base
def test_ang_vel_stability():
    assert val(rw.ang_vel_stability, ang_vel_body=np.array([[1.0, 2.0, 9.0]])) == 5.0
    assert val(rw.ang_vel_stability, lin_vel=np.array([[3.0, 3.0, 0.5]])) == 0.25


def test_base_tilt_is_the_squared_horizontal_gravity():
    assert val(rw.base_tilt) == 0.0  # level
    tilt = 0.3
    assert val(rw.base_tilt, base_up_z=np.full(1, np.cos(tilt))) == pytest.approx(np.sin(tilt) ** 2)
    assert val(rw.base_tilt, base_up_z=np.zeros(1)) == 1.0  # on its side


def test_base_height():
    assert val(rw.base_height) == 0.0  # at the 0.30 m target
    assert val(rw.base_height, base_height=np.array([0.2])) == pytest.approx(0.01)


def test_orientation_and_base_height_linear():
    assert val(rw.orientation, up_cos=np.array([1.0])) == 1.0
    assert val(rw.orientation, up_cos=np.array([0.0])) == 0.25
    assert val(rw.orientation, up_cos=np.array([-1.0])) == 0.0
    assert val(rw.base_height_linear, base_height=np.array([0.30])) == 0.0
    assert val(rw.base_height_linear, base_height=np.array([0.55])) == 1.0
    assert val(rw.base_height_linear, base_height=np.array([0.35])) == pytest.approx(0.2)


# ----------------------------------------------------------------------------- contacts
def test_feet_in_air():
    assert val(rw.feet_in_air) == 0.0  # four loaded feet
    assert val(rw.feet_in_air, foot_force_z=np.zeros((1, 4))) == 1.0  # flying
    feet = np.array([[37.0, 0.0, 37.0, 37.0]])
    calf = np.array([[0.0, 20.0, 0.0, 0.0]])  # FL kneels on its calf
    assert val(rw.feet_in_air, foot_force_z=feet, calf_force_z=calf) == 1.0
    # flying and a calf touching something: both parts count
    assert val(rw.feet_in_air, foot_force_z=np.zeros((1, 4)), calf_force_z=calf) == 2.0


def test_rear_air():
    assert val(rw.rear_air) == 0.0
    feet = np.array([[0.0, 0.0, 0.0, 0.0]])
    assert val(rw.rear_air, foot_force_z=feet) == 1.0  # both rear feet up (front don't count)
    feet = np.array([[50.0, 50.0, 0.5, 60.0]])  # RR foot below 1 N
    calf = np.array([[0.0, 0.0, 5.0, 0.0]])
    assert val(rw.rear_air, foot_force_z=feet, calf_force_z=calf) == 1.0
    feet = np.array([[0.0, 0.0, 60.0, 60.0]])  # standing on the rear feet: fine
    assert val(rw.rear_air, foot_force_z=feet) == 0.0


def test_balance():
    f = np.array([[10.0, 30.0, 20.0, 5.0]])  # right 10 + 20, left 30 + 5
    assert val(rw.balance, foot_force_z=f) == pytest.approx(5.0)


def test_collision_counts_base_hips_thighs_only():
    lf = np.zeros((1, 13, 3))
    lf[0, 0, 2] = 30.0  # base
    lf[0, 6, 0] = 2.0  # a thigh
    lf[0, 7, 0] = 0.5  # below threshold
    lf[0, 9, 2] = 40.0  # a calf (with its foot): not a collision
    assert val(rw.collision, link_force=lf) == 2.0


# ----------------------------------------------------------------------------- bipedal posture
def test_rear_pos_balance_mirrors_hips():
    q = Q0.copy()  # RL hip +0.1, RR hip -0.1: mirrored, balanced
    assert val(rw.rear_pos_balance, q=q[None]) == pytest.approx(0.0)
    q[10] += 0.3  # RL thigh
    q[11] -= 0.4  # RL calf
    assert val(rw.rear_pos_balance, q=q[None]) == pytest.approx(0.5)


def test_front_terms_wait_for_t_allow():
    q = Q0.copy()
    q[:6] += 0.1
    dq = np.zeros((1, 12))
    dq[0, :6] = 1.0
    dq[0, 6:] = 100.0  # rear legs do not count
    ddq = dq * 10
    early = dict(gait_time=np.array([0.5]))
    assert val(rw.front_joint_pos, q=q[None], **early) == 0.0
    assert val(rw.front_joint_vel, dq=dq, **early) == 0.0
    assert val(rw.front_joint_acc, ddq=ddq, **early) == 0.0
    assert val(rw.front_joint_pos, q=q[None]) == pytest.approx(0.06)
    assert val(rw.front_joint_vel, dq=dq) == pytest.approx(6.0)
    assert val(rw.front_joint_acc, ddq=ddq) == pytest.approx(600.0)


# ----------------------------------------------------------------------------- totals
def test_compute_rewards_applies_the_gait_weights_and_dt():
    s = inputs(n=2)
    gait = np.array([0, 1])
    total, terms = rw.compute_rewards(s, gait, C, dt=0.02)
    quad = sum(v[0] for k, v in terms.items() if k.startswith("quadrupedal/"))
    bip = sum(v[1] for k, v in terms.items() if k.startswith("bipedal/"))
    assert total[0] == pytest.approx(quad) and total[1] == pytest.approx(bip)
    # robot 0 (quadrupedal, standing still in its pose with zero command): 7 + 2.5 + 1 alive
    assert total[0] == pytest.approx((7.0 + 2.5 + 1.0) * 0.02)
    assert all(v[1] == 0.0 for k, v in terms.items() if k.startswith("quadrupedal/"))
    assert all(v[0] == 0.0 for k, v in terms.items() if k.startswith("bipedal/"))
    # robot 1 lies on four feet as a bipedal robot: orientation 0.25, front feet load no term,
    # no tracking (not upright), alive 1
    assert total[1] == pytest.approx((0.25 * 1.0 + 1.0) * 0.02)
    off = RewardConfig(weights={"quadrupedal": {"alive": 0.0}, "bipedal": {}}, scale_by_dt=False)
    total, terms = rw.compute_rewards(s, gait, off, dt=0.02)
    assert total.tolist() == [0.0, 0.0] and terms == {}
