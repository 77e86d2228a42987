"""The Go2 MuJoCo model against reference/go2_facts.md, the SDK joint map, and standing physics."""

import time
from pathlib import Path

import mujoco
import numpy as np
import pytest

from moe_loco_controller.core import go2
from moe_loco_sim.go2_model import (
    CONTACT_PRESETS,
    DEFAULT_TIMESTEP,
    Go2Indices,
    contact_preset,
    go2_spec,
    load_contact_presets,
    standing_height,
)
from moe_loco_sim.scene import build_scene, pose_height

CONFIG = Path(__file__).resolve().parents[1] / "config"
PRESETS = ("cheap", "menagerie")

# ------------------------------------------------------------------- figures of go2_facts.md
HIP_DIAG = (0.00088403, 0.000596003, 0.000479967)
THIGH_DIAG = (0.00594973, 0.00584149, 0.000878787)
CALF_DIAG = (0.0014901, 0.00146356, 5.31397e-05)
FL_THIGH = ((-0.00374, -0.0223, -0.0327), (0.829533, 0.0847635, -0.0200632, 0.551623))
FR_THIGH = ((-0.00374, 0.0223, -0.0327), (0.551623, -0.0200632, 0.0847635, 0.829533))
FL_CALF = (
    (0.00629595, -0.000622121, -0.141417),
    (0.710672, 0.00154099, -0.00450087, 0.703508),
)
FR_CALF = (
    (0.00629595, 0.000622121, -0.141417),
    (0.703508, -0.00450087, 0.00154099, 0.710672),
)
# body: parent, pos in parent, mass, com, inertia-frame quat, diag inertia
FACTS = {
    "base": (
        "world",
        None,
        6.921,
        (0.021112, 0, -0.005366),
        (-0.000543471, 0.713435, -0.00173769, 0.700719),
        (0.107027, 0.0980771, 0.0244531),
    ),
    "FL_hip": (
        "base",
        (0.1934, 0.0465, 0),
        0.678,
        (-0.0054, 0.00194, -0.000105),
        (0.497014, 0.499245, 0.505462, 0.498237),
        HIP_DIAG,
    ),
    "FR_hip": (
        "base",
        (0.1934, -0.0465, 0),
        0.678,
        (-0.0054, -0.00194, -0.000105),
        (0.498237, 0.505462, 0.499245, 0.497014),
        HIP_DIAG,
    ),
    "RL_hip": (
        "base",
        (-0.1934, 0.0465, 0),
        0.678,
        (0.0054, 0.00194, -0.000105),
        (0.505462, 0.498237, 0.497014, 0.499245),
        HIP_DIAG,
    ),
    "RR_hip": (
        "base",
        (-0.1934, -0.0465, 0),
        0.678,
        (0.0054, -0.00194, -0.000105),
        (0.499245, 0.497014, 0.498237, 0.505462),
        HIP_DIAG,
    ),
    "FL_thigh": ("FL_hip", (0, 0.0955, 0), 1.152, *FL_THIGH, THIGH_DIAG),
    "FR_thigh": ("FR_hip", (0, -0.0955, 0), 1.152, *FR_THIGH, THIGH_DIAG),
    "RL_thigh": ("RL_hip", (0, 0.0955, 0), 1.152, *FL_THIGH, THIGH_DIAG),
    "RR_thigh": ("RR_hip", (0, -0.0955, 0), 1.152, *FR_THIGH, THIGH_DIAG),
    "FL_calf": ("FL_thigh", (0, 0, -0.213), 0.241352, *FL_CALF, CALF_DIAG),
    "FR_calf": ("FR_thigh", (0, 0, -0.213), 0.241352, *FR_CALF, CALF_DIAG),
    "RL_calf": ("RL_thigh", (0, 0, -0.213), 0.241352, *FL_CALF, CALF_DIAG),
    "RR_calf": ("RR_thigh", (0, 0, -0.213), 0.241352, *FR_CALF, CALF_DIAG),
}
# SDK order: name, axis, range, torque limit
JOINT_FACTS = [
    ("FR_hip_joint", "x", -1.0472, 1.0472, 23.7),
    ("FR_thigh_joint", "y", -1.5708, 3.4907, 23.7),
    ("FR_calf_joint", "y", -2.7227, -0.83776, 45.43),
    ("FL_hip_joint", "x", -1.0472, 1.0472, 23.7),
    ("FL_thigh_joint", "y", -1.5708, 3.4907, 23.7),
    ("FL_calf_joint", "y", -2.7227, -0.83776, 45.43),
    ("RR_hip_joint", "x", -1.0472, 1.0472, 23.7),
    ("RR_thigh_joint", "y", -0.5236, 4.5379, 23.7),
    ("RR_calf_joint", "y", -2.7227, -0.83776, 45.43),
    ("RL_hip_joint", "x", -1.0472, 1.0472, 23.7),
    ("RL_thigh_joint", "y", -0.5236, 4.5379, 23.7),
    ("RL_calf_joint", "y", -2.7227, -0.83776, 45.43),
]
AXES = {"x": (1, 0, 0), "y": (0, 1, 0)}


@pytest.fixture(scope="module")
def scenes():
    return {p: build_scene("plane", p) for p in PRESETS}


@pytest.fixture(scope="module")
def model(scenes):
    return scenes["cheap"].model


def full_inertia(quat, diag):
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, np.asarray(quat, dtype=float) / np.linalg.norm(quat))
    rot = rot.reshape(3, 3)
    return rot @ np.diag(diag) @ rot.T


# ------------------------------------------------------------------- structure
def test_total_mass(model):
    assert abs(model.body_subtreemass[0] - 15.206) < 0.01
    base = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "base")
    assert abs(model.body_subtreemass[base] - 15.206) < 0.01


def test_body_tree_masses_and_inertias(model):
    robot = [model.body(b).name for b in range(1, model.nbody)]  # all but the world
    assert sorted(robot) == sorted(FACTS)
    for name, (parent, pos, mass, com, iquat, diag) in FACTS.items():
        body = model.body(name)
        assert model.body(body.parentid[0]).name == parent, name
        if pos is not None:
            np.testing.assert_allclose(body.pos, pos, atol=1e-9, err_msg=name)
        assert body.mass[0] == pytest.approx(mass, abs=1e-9), name
        np.testing.assert_allclose(body.ipos, com, atol=1e-9, err_msg=name)
        # The full inertia tensor, whatever axis order MuJoCo keeps the principal frame in.
        np.testing.assert_allclose(
            full_inertia(body.iquat, body.inertia),
            full_inertia(iquat, diag),
            atol=1e-9,
            err_msg=name,
        )
    assert model.body("base").pos[2] == pytest.approx(model.key_qpos[0, 2])


def test_joints_ranges_axes_and_dynamics(model):
    free = model.joint("base_free")
    assert free.type[0] == mujoco.mjtJoint.mjJNT_FREE
    assert model.njnt == 13
    for name, axis, lo, hi, _ in JOINT_FACTS:
        j = model.joint(name)
        assert j.type[0] == mujoco.mjtJoint.mjJNT_HINGE
        np.testing.assert_allclose(j.axis, AXES[axis], err_msg=name)
        np.testing.assert_allclose(j.range, (lo, hi), atol=1e-9, err_msg=name)
        assert model.jnt_limited[j.id]
        assert model.dof_damping[j.dofadr[0]] == 2.0
        assert model.dof_armature[j.dofadr[0]] == 0.01
        assert model.dof_frictionloss[j.dofadr[0]] == 0.2
        assert model.body(j.bodyid[0]).name == name.removesuffix("_joint")


def test_torque_controlled_motors(model):
    assert model.nu == 12
    for name, _, _, _, limit in JOINT_FACTS:
        a = model.actuator(name.removesuffix("_joint"))
        assert model.joint(a.trnid[0]).name == name
        assert a.trntype[0] == mujoco.mjtTrn.mjTRN_JOINT
        assert a.gaintype[0] == mujoco.mjtGain.mjGAIN_FIXED and a.gainprm[0] == 1.0
        assert a.biastype[0] == mujoco.mjtBias.mjBIAS_NONE
        assert a.dyntype[0] == mujoco.mjtDyn.mjDYN_NONE
        np.testing.assert_allclose(a.gear, [1, 0, 0, 0, 0, 0])
        assert model.actuator_ctrllimited[a.id]
        np.testing.assert_allclose(a.ctrlrange, (-limit, limit))
    assert model.opt.timestep == DEFAULT_TIMESTEP == 0.005


def test_collision_is_primitives_with_named_feet(model):
    primitives = {
        mujoco.mjtGeom.mjGEOM_BOX,
        mujoco.mjtGeom.mjGEOM_CYLINDER,
        mujoco.mjtGeom.mjGEOM_SPHERE,
        mujoco.mjtGeom.mjGEOM_PLANE,
    }
    assert model.nmesh == 0 and model.nhfield == 0
    assert all(int(t) in {int(p) for p in primitives} for t in model.geom_type)
    base = model.body("base").id
    robot_geoms = [g for g in range(model.ngeom) if model.body_rootid[model.geom_bodyid[g]] == base]
    assert len(robot_geoms) == 3 + 4 * 5  # base 3, hip 1, thigh 1, calf 2, foot 1
    for leg in ("FR", "FL", "RR", "RL"):
        foot = model.geom(f"{leg}_foot")
        assert foot.type[0] == mujoco.mjtGeom.mjGEOM_SPHERE
        assert foot.size[0] == pytest.approx(0.022)
        np.testing.assert_allclose(foot.pos, (-0.002, 0, -0.213))
        assert model.body(foot.bodyid[0]).name == f"{leg}_calf"
        assert foot.friction[0] == pytest.approx(0.8)
    # base box and the thigh box rotated 90 deg about y
    base_box = next(g for g in robot_geoms if model.geom_bodyid[g] == base)
    np.testing.assert_allclose(model.geom_size[base_box], (0.1881, 0.04675, 0.057))
    thigh = next(g for g in robot_geoms if model.geom_bodyid[g] == model.body("FL_thigh").id)
    np.testing.assert_allclose(model.geom_size[thigh], (0.1065, 0.01225, 0.017))
    np.testing.assert_allclose(
        model.geom_quat[thigh], (np.sqrt(0.5), 0, np.sqrt(0.5), 0), atol=1e-7
    )


@pytest.mark.parametrize("name", PRESETS)
def test_contact_presets(scenes, name):
    m = scenes[name].model
    p = CONTACT_PRESETS[name]
    foot = m.geom("FR_foot")
    body_geom = m.body("base").id
    other = next(g for g in range(m.ngeom) if m.geom_bodyid[g] == body_geom)
    if name == "cheap":
        assert m.opt.cone == mujoco.mjtCone.mjCONE_PYRAMIDAL
        assert m.opt.impratio == 1.0
        assert (m.opt.iterations, m.opt.ls_iterations) == (10, 5)
        assert foot.condim[0] == 3 and m.geom_condim[other] == 3
    else:
        assert m.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC
        assert m.opt.impratio == 100.0
        assert foot.condim[0] == 6
        np.testing.assert_allclose(foot.solimp[:3], (0.015, 1.0, 0.022))
    assert foot.priority[0] == 1
    assert p.foot.friction == (0.8, 0.02, 0.01)


def test_preset_yaml_matches_builtin():
    assert load_contact_presets(CONFIG / "sim.yaml") == CONTACT_PRESETS
    import yaml

    assert yaml.safe_load((CONFIG / "sim.yaml").read_text())["timestep"] == DEFAULT_TIMESTEP


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match=r"unknown contact preset 'fast'.*cheap"):
        contact_preset("fast")


# ------------------------------------------------------------------- the SDK joint map
def test_sdk_map_by_name(model):
    idx = Go2Indices.from_model(model)
    np.testing.assert_array_equal(idx.sdk_to_model, [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8])
    for i, name in enumerate(go2.JOINT_NAMES):
        j = model.joint(name)
        assert idx.joint_ids[i] == j.id
        assert idx.qpos[i] == j.qposadr[0]
        assert idx.qvel[i] == j.dofadr[0]
        assert model.actuator(int(idx.ctrl[i])).name == name.removesuffix("_joint")
        assert idx.torque_limit[i] == go2.TORQUE_LIMIT[i]
    for i, leg in enumerate(go2.LEGS):
        assert model.geom(int(idx.foot_geoms[i])).name == f"{leg}_foot"
        assert model.body(int(idx.calf_bodies[i])).name == f"{leg}_calf"
        assert model.sensor(f"{leg}_foot_touch").adr[0] == idx.foot_touch[i]
    # The declaration order really differs from SDK order: positional indexing would be wrong.
    assert [model.joint(j).name for j in range(1, 13)][:3] == [
        "FL_hip_joint",
        "FL_thigh_joint",
        "FL_calf_joint",
    ]


def test_sdk_map_by_physics():
    """A torque on SDK joint i moves exactly the joint named JOINT_NAMES[i] and its body."""
    scene = build_scene("plane", "cheap")
    m = scene.model
    m.opt.gravity[:] = 0.0
    idx = scene.idx
    data = mujoco.MjData(m)
    for i, name in enumerate(go2.JOINT_NAMES):
        scene.reset(data, base_pos=(0, 0, 1.0))
        body = m.body(name.removesuffix("_joint")).id
        parent = m.body_parentid[body]
        rel0 = _relative_quat(data, parent, body)
        tau = np.zeros(12)
        tau[i] = 2.0
        for _ in range(20):
            idx.set_torque(data, tau)
            mujoco.mj_step(m, data)
        moved = np.abs(idx.joint_pos(data) - go2.DEFAULT_STANDING_POSE)
        assert int(np.argmax(moved)) == i, (name, moved)
        assert data.qpos[m.joint(name).qposadr[0]] > go2.DEFAULT_STANDING_POSE[i]
        assert np.max(np.delete(moved, i)) < 0.1 * moved[i]
        # the body named after the joint turned relative to its parent
        assert abs(abs(np.dot(_relative_quat(data, parent, body), rel0)) - 1.0) > 1e-4, name


def _relative_quat(data, parent, body):
    inv = np.zeros(4)
    mujoco.mju_negQuat(inv, data.xquat[parent])
    out = np.zeros(4)
    mujoco.mju_mulQuat(out, inv, data.xquat[body])
    return out


def test_home_keyframe_is_the_standing_pose(scenes):
    scene = scenes["cheap"]
    data = scene.make_data()
    np.testing.assert_array_equal(data.qpos, scene.model.key_qpos[0])
    np.testing.assert_allclose(scene.idx.joint_pos(data), go2.DEFAULT_STANDING_POSE)


def test_standing_height_touches_ground():
    model = go2_spec().compile()
    idx = Go2Indices.from_model(model)
    h = standing_height(model, idx)
    assert h == pytest.approx(pose_height())
    data = mujoco.MjData(model)
    idx.set_pose(data, go2.DEFAULT_STANDING_POSE, (0, 0, h))
    mujoco.mj_kinematics(model, data)
    assert np.min(data.geom_xpos[idx.foot_geoms, 2]) == pytest.approx(0.022, abs=1e-12)
    assert 0.3 < h < 0.35


# ------------------------------------------------------------------- physics
def pd_step(model, data, idx, target, kp=40.0, kd=0.5):
    """The deployment PD law (Kp 40, Kd 0.5), clipped to the torque limits, then one step."""
    q, dq = idx.joint_pos(data), idx.joint_vel(data)
    tau = np.clip(kp * (target - q) - kd * dq, -idx.torque_limit, idx.torque_limit)
    idx.set_torque(data, tau)
    mujoco.mj_step(model, data)


@pytest.mark.parametrize("name", PRESETS)
def test_robot_stands_on_the_plane(scenes, name):
    scene = scenes[name]
    m, idx = scene.model, scene.idx
    data = scene.make_data()
    target = go2.DEFAULT_STANDING_POSE
    heights, ups = [], []
    for _ in range(int(2.0 / m.opt.timestep)):
        pd_step(m, data, idx, target)
        heights.append(idx.base_pos(data)[2])
        rot = data.xmat[idx.base_body].reshape(3, 3)
        ups.append(rot[2, 2])  # z of the base z-axis: 1 when upright
    heights = np.array(heights)
    assert min(ups) > 0.99, "tipped over"
    assert np.all((heights[200:] > 0.25) & (heights[200:] < 0.35)), (heights.min(), heights.max())
    # Settled: MuJoCo's soft friction lets the feet creep outward slowly (the cheap preset's
    # impratio 1 most: about 3 mm/s at 2 s), so "still" means under 5 mm over the last 0.5 s.
    assert np.ptp(heights[-100:]) < 5e-3, "still moving after 1.5 s"

    feet = idx.foot_forces(data)
    assert np.all(feet > 0), feet
    assert feet.sum() == pytest.approx(15.206 * 9.81, rel=0.05)
    assert feet[0] == pytest.approx(feet[1], rel=0.02)  # FR ~ FL (left/right symmetric)

    quat, gyro, acc = idx.imu(data)
    assert np.linalg.norm(quat) == pytest.approx(1.0, abs=1e-9)
    assert quat[0] > 0.99  # w first, upright
    # site frame = base frame (sensors are computed before the step integrates qpos: ~1e-5 apart)
    np.testing.assert_allclose(quat, idx.base_quat(data), atol=1e-4)
    assert acc[2] == pytest.approx(9.81, abs=0.1)
    assert np.abs(acc[:2]).max() < 0.2
    assert np.abs(gyro).max() < 0.05
    assert np.abs(idx.joint_pos(data) - target).max() < 0.2


def test_same_inputs_give_bit_identical_runs():
    def run():
        scene = build_scene("plane", "cheap")
        data = scene.make_data()
        rng = np.random.default_rng(7)
        for _ in range(300):
            target = go2.DEFAULT_STANDING_POSE + rng.normal(0, 0.3, 12)
            pd_step(scene.model, data, scene.idx, target)
        return data.qpos.copy(), data.qvel.copy()

    (q1, v1), (q2, v2) = run(), run()
    assert q1.tobytes() == q2.tobytes()
    assert v1.tobytes() == v2.tobytes()


def test_speed_figure(scenes, capsys):
    """Physics steps/s for both presets: 2 s of sim standing under PD. Printed, not asserted."""
    lines = []
    for name in PRESETS:
        scene = scenes[name]
        m, idx = scene.model, scene.idx
        data = scene.make_data()
        n = int(2.0 / m.opt.timestep)
        t0 = time.perf_counter()
        for _ in range(n):
            mujoco.mj_step(m, data)
        bare = n / (time.perf_counter() - t0)
        scene.reset(data)
        t0 = time.perf_counter()
        for _ in range(n):
            pd_step(m, data, idx, go2.DEFAULT_STANDING_POSE)
        with_pd = n / (time.perf_counter() - t0)
        lines.append(
            f"sim speed {name}: {bare:,.0f} steps/s bare (robot falls limp), "
            f"{with_pd:,.0f} steps/s with the Python PD loop"
        )
    with capsys.disabled():
        print("\n" + "\n".join(lines))


# ------------------------------------------------------------------- in-engine PD actuation
def test_pd_actuation_matches_the_python_pd_law():
    """The ``pd`` servos reproduce clip(kp (q* - q) - kd dq) of the motor model + caller PD."""
    motor = build_scene("plane", "cheap")
    servo = build_scene("plane", "cheap", actuation="pd")
    assert servo.idx.actuation == "pd" and motor.idx.actuation == "motor"
    np.testing.assert_array_equal(servo.idx.torque_limit, go2.TORQUE_LIMIT)
    np.testing.assert_array_equal(
        servo.model.key_ctrl[0][servo.idx.ctrl], go2.DEFAULT_STANDING_POSE
    )
    dm, ds = motor.make_data(), servo.make_data()
    rng = np.random.default_rng(3)
    for _ in range(200):
        target = go2.DEFAULT_STANDING_POSE + rng.normal(0, 0.5, 12)  # large: the clip matters
        pd_step(motor.model, dm, motor.idx, target)
        servo.idx.set_target(ds, target)
        mujoco.mj_step(servo.model, ds)
        np.testing.assert_allclose(
            servo.idx.joint_torque(ds), motor.idx.joint_torque(dm), atol=1e-6
        )
    np.testing.assert_allclose(ds.qpos, dm.qpos, atol=1e-6)
    with pytest.raises(RuntimeError, match="pd actuation"):
        motor.idx.set_target(dm, go2.DEFAULT_STANDING_POSE)
    with pytest.raises(RuntimeError, match="motor actuation"):
        servo.idx.set_torque(ds, np.zeros(12))


def test_rollout_steps_many_robots_standing():
    """mujoco.rollout steps many MjData of one model in C (the vectorised env's path)."""
    from mujoco import rollout

    scene = build_scene("plane", "cheap", actuation="pd")
    m, idx = scene.model, scene.idx
    data = scene.make_data()
    kind = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state0 = np.zeros(mujoco.mj_stateSize(m, kind))
    mujoco.mj_getState(m, data, state0, kind)
    n_env, n_steps = 4, 200
    ctrl = np.zeros((n_env, n_steps, m.nu))
    ctrl[..., idx.ctrl] = go2.DEFAULT_STANDING_POSE
    states, _ = rollout.rollout(m, mujoco.MjData(m), np.tile(state0, (n_env, 1)), ctrl)
    qpos = states[:, -1, 1 : 1 + m.nq]  # FULLPHYSICS state: time, qpos, qvel, ...
    assert np.all((qpos[:, idx.base_qpos + 2] > 0.25) & (qpos[:, idx.base_qpos + 2] < 0.35))
    assert np.ptp(qpos, axis=0).max() == 0.0  # same start, same controls: identical robots


def test_upright_and_nose_up_tell_four_legs_from_the_rear_legs():
    """The sim's posture figures: level, 1 / 0; pitched nose-up by 90 degrees (on the rear
    legs), 0 / 1; nose-down, 0 / -1."""
    from moe_loco_sim.robot import SimRobot

    robot = SimRobot(build_scene("plane", contact="cheap"))
    for pitch, up, nose in ((0.0, 1.0, 0.0), (-np.pi / 2, 0.0, 1.0), (np.pi / 2, 0.0, -1.0)):
        quat = (np.cos(pitch / 2), 0.0, np.sin(pitch / 2), 0.0)  # about the body y axis
        robot.reset("stand", base_pos=(0.0, 0.0, 1.0), base_quat=quat)
        assert robot.upright() == pytest.approx(up, abs=1e-9)
        assert robot.nose_up() == pytest.approx(nose, abs=1e-9)
