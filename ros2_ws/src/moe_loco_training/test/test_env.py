"""The vectorised environment end to end (real MuJoCo): the contract's tensors, determinism,
observation parity with the controller core, randomisation, curriculum and gait switches."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
import torch

from moe_loco_controller.core import go2
from moe_loco_controller.core.command_guard import TARGET_LOWER, TARGET_UPPER, clamp_targets
from moe_loco_controller.core.observation import ObservationBuilder
from moe_loco_controller.core.policy import ActionMap
from moe_loco_sim.lowlevel_state import read_frame, robot_state_from_frame
from moe_loco_training.env import ENVIRONMENTS, MultitaskEnv
from moe_loco_training.env.constants import IMPLICIT_DIM, TASKS
from moe_loco_training.env.curriculum import update_levels
from moe_loco_training.export import TrainingProvenance, build_metadata, random_policy


def random_actions(rng, n, amp=0.5):
    return torch.from_numpy(rng.uniform(-amp, amp, (n, 12))).float()


def test_contract_shapes_and_types(small_env):
    env = small_env
    assert ENVIRONMENTS["multitask"] is MultitaskEnv
    assert env.dt == pytest.approx(0.02) and env.substeps == 4
    assert env.num_envs == 10 and sorted(env.task_names) == sorted(TASKS)
    assert sorted(env.task.tolist()) == list(range(10))  # one robot per task
    for out in (env.reset(), env.step(torch.zeros(10, 12))):
        assert out.proprio.shape == (10, 42) and out.proprio.dtype == torch.float32
        assert out.privileged_explicit.shape == (10, 4)
        assert out.privileged_implicit.shape == (10, IMPLICIT_DIM)
        assert out.command.shape == (10, 5)
        assert out.reward.shape == (10,) and out.done.dtype == torch.bool
        assert out.time_out.shape == (10,)
        onehot = out.command[:, 3:]
        assert torch.all(onehot.sum(1) == 1)
        assert torch.equal(onehot.argmax(1), out.infos["gait"])
    terms = out.infos["reward_terms"]
    assert "quadrupedal/tracking_lin_vel" in terms and "bipedal/orientation" in terms
    total = sum(terms.values())
    torch.testing.assert_close(total, out.reward, atol=1e-5, rtol=0)
    assert set(out.infos["curriculum"]) == set(env.task_names)
    assert torch.all(torch.isfinite(out.proprio))
    with pytest.raises(ValueError, match=r"shape \(10, 12\)"):
        env.step(torch.zeros(3, 12))


def test_pd_law_torque_limits_and_standing(make_config):
    small_config = make_config
    """Zero actions hold the default pose with Kp 40 / Kd 0.5: quadrupedal robots stand,
    the feet carry the weight (the contact sensors' sign), torques stay within the limits."""
    env = MultitaskEnv(small_config(10, **{"randomization.enabled": False}))
    env.reset()
    for _ in range(50):
        out = env.step(torch.zeros(10, 12))
    quad = np.flatnonzero(env.gait == 0)
    z = env.state[quad, 3] - env.tiles.height(
        env.tile[quad], env.state[quad, 1] - env.tiles.origins[env.tile[quad], 0]
    )
    assert np.all((z > 0.24) & (z < 0.34)), z
    feet = out.privileged_implicit.numpy().reshape(10, 13, 3)[:, 9:, 2] / env.config.implicit_scale
    weight = 15.206 * 9.81
    plane_q = env.task_names.index("plane_q")
    i = int(np.flatnonzero(env.task == plane_q)[0])
    assert feet[i].sum() == pytest.approx(weight, rel=0.1)
    # the applied PD torque is kp (target - q) - kd dq, clipped: compare with the engine's
    d = mujoco.MjData(env.models[i])
    mujoco.mj_setState(env.models[i], d, env.state[i], mujoco.mjtState.mjSTATE_FULLPHYSICS)
    d.ctrl[env.idx.ctrl] = env.default_q + 0.25 * 3.0  # a big step: torques saturate
    mujoco.mj_forward(env.models[i], d)
    tau = d.actuator_force[env.idx.ctrl]
    assert np.all(np.abs(tau) <= go2.TORQUE_LIMIT + 1e-9)
    assert np.any(np.isclose(np.abs(tau), go2.TORQUE_LIMIT))
    env.close()


def test_pd_targets_are_the_controller_cores_clamped_ones(make_config):
    """Actions far past the joint ranges: every substep's target is exactly what the deployed
    core sends for that action (its ActionMap, then the command guard's clamp); without the
    clamp some targets would lie beyond the range (the check can fail)."""
    env = MultitaskEnv(make_config(10, **{"randomization.enabled": False}))
    env.reset()
    meta = build_metadata(random_policy(0), env.control, env.observation, TrainingProvenance())
    action_map = ActionMap.of(meta)
    actions = np.random.default_rng(3).uniform(-20.0, 20.0, (10, 12))
    env.step(torch.from_numpy(actions).float())
    sent = env._ctrl[:, :, env.idx.ctrl]
    a32 = actions.astype(np.float32).astype(np.float64)  # what the float32 tensor carried
    for i in range(10):
        core = clamp_targets(action_map.pd_targets_sdk(action_map.clip(a32[i])))
        np.testing.assert_array_equal(sent[i], np.tile(core, (env.substeps, 1)))
    unclamped = env.default_q + env.control.action_scale * a32
    assert np.any((unclamped < TARGET_LOWER) | (unclamped > TARGET_UPPER))
    env.close()


def _trajectory(small_config, seed, steps=60):
    cfg = small_config(
        10, seed=seed, **{"randomization.push_interval_s": 0.2, "commands.resampling_time_s": 0.3}
    )
    with MultitaskEnv(cfg) as env:
        rng = np.random.default_rng(123)
        outs = [env.reset()]
        for _ in range(steps):
            outs.append(env.step(random_actions(rng, 10, 1.0)))
    cols = []
    for o in outs:
        cols += [o.proprio, o.privileged_explicit, o.privileged_implicit, o.command, o.reward]
        cols += [o.done.float(), o.infos["level"].float()]
    return torch.cat([c.reshape(len(c), -1) for c in cols], dim=1), outs


def test_same_seed_same_tensors_other_seed_other_tensors(make_config):
    small_config = make_config
    a, outs = _trajectory(small_config, 0)
    b, _ = _trajectory(small_config, 0)
    c, _ = _trajectory(small_config, 1)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert sum(int(o.done.sum()) for o in outs) > 0  # resets happened on the way


def test_a_restored_state_continues_bit_identically_and_a_misfit_changes_nothing(make_config):
    cfg = make_config(10, **{"randomization.push_interval_s": 0.2})
    rng = np.random.default_rng(7)
    actions = [random_actions(rng, 10, 1.0) for _ in range(40)]
    with MultitaskEnv(cfg) as a, MultitaskEnv(cfg.replace(seed=cfg.seed + 1)) as b:
        a.reset()
        b.reset()
        for x in actions[:20]:
            a.step(x)
        b.load_state_dict(a.state_dict())  # b was seeded and randomised differently
        for x in actions[20:]:
            oa, ob = a.step(x), b.step(x)
            for f in ("proprio", "privileged_explicit", "privileged_implicit", "reward", "done"):
                assert torch.equal(getattr(oa, f), getattr(ob, f)), f
        with MultitaskEnv(make_config(4)) as small:
            small.reset()
            before = small.state_dict()
            with pytest.raises(ValueError, match="does not fit: attribute"):
                small.load_state_dict(a.state_dict())
            after = small.state_dict()
            assert all(
                torch.equal(before["arrays"][k], after["arrays"][k]) for k in before["arrays"]
            )


def test_what_the_code_derives_is_neither_saved_nor_restored(make_config):
    """The tiles' arrays, the target law's bounds and index vectors come from this code and
    configuration: a state leaves them out, and a state that holds them (this code's first
    checkpoints did) loads with them ignored."""
    cfg = make_config(6)
    with MultitaskEnv(cfg) as a, MultitaskEnv(cfg) as b:
        a.reset()
        state = a.state_dict()
        assert not set(MultitaskEnv._DERIVED) & set(state["arrays"])
        older = {**state, "arrays": dict(state["arrays"])}
        older["arrays"]["_heights"] = torch.zeros(1)  # a stale tile profile, of another shape
        b.reset()
        assert b.load_state_dict(older) is False
        np.testing.assert_array_equal(b._heights, a.tiles.heights)
        assert torch.equal(b.observe().proprio, a.observe().proprio)


def test_proprioception_equals_the_controller_cores(small_env):
    """The env's p_t (noise off) and the deployed builder's, from the same MuJoCo state read
    through the robot's wire format (float32), agree for every robot."""
    env = small_env
    rng = np.random.default_rng(5)
    env.reset()
    for _ in range(15):
        env.step(random_actions(rng, 10, 0.8))
    meta = build_metadata(random_policy(0), env.control, env.observation, TrainingProvenance())
    builder = ObservationBuilder(meta)
    p_env = env.proprio_clean().numpy()
    assert np.abs(p_env[:, 18:30]).max() > 0.05  # joints are moving: not a trivial state
    for i in range(env.num_envs):
        d = mujoco.MjData(env.models[i])
        mujoco.mj_setState(env.models[i], d, env.state[i], mujoco.mjtState.mjSTATE_FULLPHYSICS)
        mujoco.mj_forward(env.models[i], d)
        state = robot_state_from_frame(read_frame(d, env.idx, np.zeros(12)), stamp=0.0)
        p_core = builder.proprio(state, env.last_action[i])
        np.testing.assert_allclose(p_env[i], p_core, atol=2e-5, rtol=1e-5)
    # and the noisy observation the policy gets is the clean one plus bounded noise
    out = env.step(torch.zeros(10, 12))
    noise = out.proprio.numpy() - env.proprio_clean().numpy()
    amp = env._noise_amp
    assert np.all(np.abs(noise) <= amp + 1e-5) and np.abs(noise).max() > 0


def test_domain_randomisation_is_applied_per_robot_and_seeded(make_config):
    small_config = make_config
    env = MultitaskEnv(small_config(10, **{"randomization.action_latency_substeps": [2, 2]}))
    out = env.reset()
    r = env.config.randomization
    feet = env.idx.foot_geoms
    fr = np.array([m.geom_friction[feet[0], 0] for m in env.models])
    np.testing.assert_array_equal(fr, env.friction)
    np.testing.assert_allclose(out.privileged_explicit[:, 3].numpy(), env.friction, rtol=1e-6)
    assert np.all((fr >= r.friction[0]) & (fr <= r.friction[1])) and len(set(fr)) == 10
    base = env.idx.base_body
    mass = np.array([m.body_mass[base] for m in env.models]) - env.model.body_mass[base]
    assert np.all((mass >= -1.0) & (mass <= 2.0)) and np.ptp(mass) > 0
    com = np.array([m.body_ipos[base] for m in env.models]) - env.model.body_ipos[base]
    assert np.all(np.abs(com) <= np.array(r.com_offset) + 1e-12) and np.ptp(com) > 0
    gain = np.array([m.actuator_gainprm[env.idx.ctrl, 0] for m in env.models])
    kd = -np.array([m.actuator_biasprm[env.idx.ctrl, 2] for m in env.models])
    np.testing.assert_allclose(gain, env.kp_eff)
    np.testing.assert_allclose(kd, env.kd_eff)
    assert np.all((env.motor_strength >= 0.9) & (env.motor_strength <= 1.1))
    # Kp and Kd get their own per-motor factors on top of the strength
    kpf, kdf = env.kp_eff / (40.0 * env.motor_strength), env.kd_eff / (0.5 * env.motor_strength)
    for f, (lo, hi) in ((kpf, r.kp_factor), (kdf, r.kd_factor)):
        assert np.all((f >= lo - 1e-12) & (f <= hi + 1e-12)) and np.ptp(f) > 0.05
    assert not np.allclose(kpf, kdf)
    # latency: the first two substeps still get the previous target
    prev = env.prev_target.copy()
    a = torch.full((10, 12), 0.4)
    env.step(a)
    ctrl = env._ctrl[:, :, env.idx.ctrl]
    np.testing.assert_allclose(ctrl[:, :2], prev[:, None].repeat(2, 1))
    np.testing.assert_allclose(ctrl[:, 2:], np.tile(env.default_q + 0.1, (10, 2, 1)), atol=1e-6)
    again = MultitaskEnv(small_config(10, **{"randomization.action_latency_substeps": [2, 2]}))
    again.reset()
    np.testing.assert_array_equal(again.friction, env.friction)
    off = MultitaskEnv(small_config(10, **{"randomization.enabled": False}))
    off.reset()
    assert np.all(off.friction == 0.8) and np.all(off.motor_strength == 1.0)
    assert not off._noise_amp.any() and np.all(off.latency == 0)
    for e in (env, again, off):
        e.close()


def test_pushes_kick_the_base(make_config):
    small_config = make_config

    def run(interval):
        cfg = small_config(10, **{"randomization.push_interval_s": interval})
        with MultitaskEnv(cfg) as env:
            env.reset()
            env.push_timer[:] = 0.0 if interval else np.inf  # push on the first step
            env.step(torch.zeros(10, 12))
            return env.state[:, env._qvel0 : env._qvel0 + 2].copy()  # base velocity x, y

    pushed, calm = run(8.0), run(0.0)
    assert np.abs(pushed).max() > 0.1 and np.abs(calm).max() < 0.05


def test_curriculum_promotes_on_progress_and_demotes_without(make_config):
    small_config = make_config
    env = MultitaskEnv(small_config(10, **{"randomization.enabled": False}))
    env.reset()
    bar = int(np.flatnonzero(env.task == env.task_names.index("bar_q"))[0])
    pit = int(np.flatnonzero(env.task == env.task_names.index("pit_q"))[0])
    env.level[[bar, pit]] = 2
    env.reset_ids(np.array([bar, pit]))
    for _ in range(50):  # 1 s standing still: the command asked for >= 0.3 m
        env.step(torch.zeros(10, 12))
    # the bar robot crossed its tile (teleported past the end): time-out and promotion
    env.state[bar, 1] = env.tiles.origins[env.tile[bar], 0] + env.config.terrain.tile_length + 0.1
    # the pit robot falls over where it stands: terminated, no progress: demotion
    env.state[pit, 4:8] = [math.cos(0.7), math.sin(0.7), 0.0, 0.0]
    out = env.step(torch.zeros(10, 12))
    assert bool(out.time_out[bar]) and not bool(out.infos["terminated"][bar])
    assert bool(out.infos["terminated"][pit])
    assert env.level[bar] == 3 and env.level[pit] == 1
    assert out.infos["curriculum"]["bar_q"] == 3.0
    # and the robots now stand on their new tiles
    x0 = env.tiles.origins[env.tile[bar], 0]
    assert env.state[bar, 1] - x0 == pytest.approx(env.config.terrain.lead_in / 2)
    env.close()


def test_update_levels_rules():
    rng = np.random.default_rng(0)
    from moe_loco_training.env.config import CurriculumConfig

    c = CurriculumConfig()
    new, up, down = update_levels(
        level=np.array([1, 1, 1, 9, 0, 4, 4]),
        is_plane=np.array([False, False, False, False, False, True, True]),
        distance=np.array([3.0, 1.0, 0.1, 6.0, 0.0, 0.0, 0.0]),
        course=np.full(7, 5.0),
        commanded=np.array([5.0, 1.5, 4.0, 5.0, 4.0, 0.0, 0.0]),
        timed_out=np.array([True, True, False, True, False, True, False]),
        levels=10,
        config=c,
        rng=rng,
    )
    assert up.tolist() == [True, False, False, True, False, True, False]
    assert down.tolist() == [False, False, True, False, True, False, True]
    assert new[[0, 1, 2, 4, 5, 6]].tolist() == [2, 1, 0, 0, 5, 3]
    assert 0 <= new[3] <= 9  # past the top: a random level


def test_the_curriculum_tracking_uses_each_gaits_sigma(make_config):
    """A step's tracking for the plane curriculum: exp(-err / sigma) with the bipedal sigma for
    bipedal robots and the shared one for quadrupedal robots (from the velocity as rewarded)."""
    env = MultitaskEnv(
        make_config(10, **{"randomization.enabled": False, "rewards.bipedal_tracking_sigma": 0.05})
    )
    env.reset()
    env.set_commands(np.tile([0.3, 0.1, 0.0], (10, 1)))
    env.tracking_sum[:] = 0.0
    env.step(torch.zeros(10, 12))
    v, _ = env.base_heading_velocity()
    err = np.sum(np.square(env.command[:, :2] - v[:, :2]), axis=1)
    sigma = np.where(env.gait == 1, 0.05, 0.25)
    assert set(env.gait) == {0, 1}
    np.testing.assert_allclose(env.tracking_sum, np.exp(-err / sigma), rtol=1e-9)
    env.close()


def test_plane_tiles_switch_gait_inside_episodes_and_commands_follow_the_gait(make_config):
    small_config = make_config
    cfg = small_config(
        10,
        **{
            "commands.gait_switch_prob": 1.0,
            "commands.resampling_time_s": 0.2,
            "randomization.enabled": False,
            "episode_length_s": 100.0,
        },
    )
    env = MultitaskEnv(cfg)
    env.reset()
    names = env.task_names
    plane = np.isin(env.task, [names.index(t) for t in ("plane_q", "standup_b", "walk_b")])
    start = env.gait.copy()
    seen_switch = np.zeros(10, dtype=bool)
    ranges = cfg.commands.ranges
    for _ in range(30):
        out = env.step(torch.zeros(10, 12))
        seen_switch |= env.gait != start
        for i in range(10):
            g = ("quadrupedal", "bipedal")[env.gait[i]]
            vx = env.command[i, 0]
            if plane[i]:
                lo, hi = ranges[g]["vx"]
                assert lo - 1e-9 <= vx <= hi + 1e-9
            else:
                lo, hi = cfg.commands.obstacle_vx[g]
                assert lo <= vx <= hi and env.command[i, 1] == 0.0
    assert np.all(seen_switch[plane]) and not np.any(seen_switch[~plane])
    standup = int(np.flatnonzero(env.task == names.index("standup_b"))[0])
    assert np.all(env.command[standup] == 0.0)
    # the one-hot shows the switched gait
    assert torch.equal(out.command[:, 3:].argmax(1), torch.from_numpy(env.gait))
    env.close()


def test_obstacle_tiles_command_forward_and_hold_the_heading(small_env):
    env = small_env
    env.reset()
    bar = int(np.flatnonzero(env.task == env.task_names.index("bar_q"))[0])
    yaw = 0.3  # turned left of +x: the command turns it back right
    env.state[bar, 4:8] = [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]
    env.step(torch.zeros(10, 12))
    assert env.command[bar, 0] >= 0.3 and env.command[bar, 1] == 0.0
    gain = env.config.commands.heading_gain
    assert env.command[bar, 2] == pytest.approx(-gain * yaw, abs=0.05)


def test_upright_starts_put_a_share_of_bipedal_resets_on_the_rear_legs(make_config):
    """Reference-state initialisation for the bipedal tasks (``upright_start``)."""
    from moe_loco_training.env.config import TaskSpec

    tasks = {"walk_b": {"kind": "plane", "gait": "bipedal", "upright_start": 0.5}}
    cfg = make_config(40, **{"terrain.tasks": tasks, "terrain.levels": 1,
                             "terrain.init_max_level": 0})  # fmt: skip
    with MultitaskEnv(cfg) as env:
        env.reset()
        s = env.state
        quat = s[:, env._qpos0 + 3 : env._qpos0 + 7]
        # body x axis' world z: 1 - 2 (x^2 + y^2)... of the x axis: 2 (x z - w y)
        w, x, y, z = quat.T
        nose_up = 2 * (x * z - w * y)
        up = nose_up > 0.99
        assert 8 <= up.sum() <= 32, up.sum()  # about half of 40
        assert np.all(np.abs(nose_up[~up]) < 0.1)  # the others in the stance
        height = s[:, env._qpos0 + 2]
        assert np.all(height[up] > 0.5) and np.all(height[~up] < 0.4)
        out = env.step(torch.zeros(40, 12))  # the first step: nobody is terminated
        assert not out.infos["terminated"].any()
    # part-way up: the pitch drawn from [upright_pitch_min, 90] degrees, the joints in proportion
    tasks["walk_b"].update(upright_start=1.0, upright_pitch_min=0.0)
    with MultitaskEnv(make_config(40, **{"terrain.tasks": tasks, "terrain.levels": 1,
                                         "terrain.init_max_level": 0})) as env:  # fmt: skip
        env.reset()
        w, x, y, z = env.state[:, env._qpos0 + 3 : env._qpos0 + 7].T
        nose_up = 2 * (x * z - w * y)
        assert nose_up.min() < 0.3 and nose_up.max() > 0.9 and np.all(nose_up > -0.01)
        assert not env.step(torch.zeros(40, 12)).infos["terminated"].any()
    with pytest.raises(ValueError, match="upright_pitch_min"):
        TaskSpec("plane", "bipedal", upright_start=0.5, upright_pitch_min=120.0)
    with pytest.raises(ValueError, match="bipedal tasks"):
        TaskSpec("plane", "quadrupedal", upright_start=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        TaskSpec("plane", "bipedal", upright_start=1.5)


def test_a_state_resumed_with_other_task_shares_keeps_each_tasks_curriculum(make_config):
    """A campaign that rebalances its task mix on resume: the robots follow the new shares,
    each task's robots draw their levels from the levels that task held, every robot starts
    a new episode; a task the state has no robots of is refused, before any change."""
    tasks = {
        "plane_q": {"kind": "plane", "gait": "quadrupedal", "weight": 1.0},
        "bar_q": {"kind": "bar", "gait": "quadrupedal", "easy": 0.02, "hard": 0.2, "count": 3},
    }
    cfg = make_config(12, **{"terrain.tasks": tasks})
    rebal = {**tasks, "plane_q": {**tasks["plane_q"], "weight": 3.0}}
    with MultitaskEnv(cfg) as a, MultitaskEnv(cfg.replace(**{"terrain.tasks": rebal})) as b:
        a.reset()
        plane, bar = a.task_names.index("plane_q"), a.task_names.index("bar_q")
        for _ in range(5):
            a.step(torch.zeros(12, 12))
        a.level[a.task == plane] = 1  # distinct curricula per task
        a.level[a.task == bar] = 3
        assert (a.task == plane).sum() == 6
        assert a.load_state_dict(a.state_dict()) is False  # the same shares: exact
        b.reset()
        assert b.load_state_dict(a.state_dict()) is True
        assert (b.task == plane).sum() == 9 and (b.task == bar).sum() == 3
        assert np.all(b.level[b.task == plane] == 1) and np.all(b.level[b.task == bar] == 3)
        assert np.all(b.episode_time == 0.0)
        assert np.all(b.gait == b._task_gait)
        out = b.step(torch.zeros(12, 12))
        assert torch.isfinite(out.proprio).all()
        only_plane = {"plane_q": tasks["plane_q"]}
        with MultitaskEnv(make_config(12, **{"terrain.tasks": only_plane})) as p:
            p.reset()
            assert p.load_state_dict(p.state_dict()) is False
            before = p.state_dict()
            stray = {
                **before,
                "arrays": {**before["arrays"], "task": torch.ones(12, dtype=torch.int64)},
            }
            with pytest.raises(ValueError, match="no robots of task"):
                p.load_state_dict(stray)
            after = p.state_dict()
            assert all(
                torch.equal(before["arrays"][k], after["arrays"][k]) for k in before["arrays"]
            )
