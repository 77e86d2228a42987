"""The walking recipe's environment rules (real MuJoCo): gait switches only where both gaits are
trained, plane-only worlds do not end episodes at tile edges, the plane curriculum promotes on
tracking, standing-still commands, touchdowns feed the stepping reward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moe_loco_training.env import MultitaskEnv
from moe_loco_training.env.config import CurriculumConfig
from moe_loco_training.env.curriculum import update_levels
from moe_loco_training.env.tiles import build_tile_grid, grid_terrain

QUAD_PLANE = {"plane_q": {"kind": "plane", "gait": "quadrupedal"}}


def test_a_quadrupedal_only_task_set_never_issues_a_bipedal_command(make_config):
    """v0's "quadrupedal-only" run flipped plane robots to the bipedal command at half of its
    resamples; with only quadrupedal plane tasks a resample must never switch the gait."""
    cfg = make_config(
        16,
        **{
            "terrain.tasks": QUAD_PLANE,
            "commands.gait_switch_prob": 1.0,
            "commands.resampling_time_s": 0.04,
            "randomization.enabled": False,
        },
    )
    with MultitaskEnv(cfg) as env:
        env.reset()
        for _ in range(40):  # 20 resamples per robot
            out = env.step(torch.zeros(16, 12))
            assert np.all(env.gait == 0)
            assert torch.all(out.command[:, 3] == 1.0) and torch.all(out.command[:, 4] == 0.0)
            assert float(out.infos["reward_terms"]["quadrupedal/alive"].min()) > 0
    # with a bipedal plane task beside it, the same resamples do switch the quadrupeds
    both = {**QUAD_PLANE, "walk_b": {"kind": "plane", "gait": "bipedal"}}
    with MultitaskEnv(cfg.replace(**{"terrain.tasks": both})) as env:
        env.reset()
        quad = env.task == env.task_names.index("plane_q")
        seen = np.zeros(16, bool)
        for _ in range(5):
            env.step(torch.zeros(16, 12))
            seen |= env.gait == 1
        assert np.all(seen[quad])


def test_plane_only_world_has_no_tile_edges_but_obstacle_tiles_do(make_config):
    """Every tile a plane: the ground is one plane and walking off a tile ends nothing (v0 reset a
    robot walking at 0.5 m/s after 1.5-4 s); with obstacle tiles leaving the tile is a time-out."""
    bar = vars(make_config(2).terrain.tasks["bar_q"])
    for ends in (False, True):
        tasks = {**QUAD_PLANE, "bar_q": bar} if ends else QUAD_PLANE
        cfg = make_config(2, **{"randomization.enabled": False, "terrain.tasks": tasks})
        with MultitaskEnv(cfg) as env:
            env.reset()
            i = int(np.flatnonzero(env.task == env.task_names.index("plane_q"))[0])
            env.state[i, 1] += cfg.terrain.tile_length  # past the tile's end
            out = env.step(torch.zeros(2, 12))
            assert bool(out.time_out[i]) is ends
            assert not bool(out.infos["terminated"][i])
            if not ends:  # and there is ground out there: the robot keeps standing on it
                z0 = env.state[i, 3]
                for _ in range(50):
                    out = env.step(torch.zeros(2, 12))
                    assert not bool(out.done[i])
                assert abs(env.state[i, 3] - z0) < 0.05, (z0, env.state[i, 3])


def test_a_plane_only_world_is_one_ground_plane_at_the_surface(make_config):
    """Plane tiles are floor slabs with a 0.6 m drop at their edges in a world with obstacles;
    a plane-only world (where leaving a tile ends nothing) is the ground plane alone, at z = 0,
    so a robot walking 20 m from its spawn in any direction stays on level ground."""
    cfg = make_config(2, **{"terrain.tasks": QUAD_PLANE})
    grid = build_tile_grid(cfg.terrain)
    geoms = grid_terrain(grid, cfg.terrain).geoms
    assert [(g.type, g.pos[2]) for g in geoms] == [("plane", 0.0)]
    assert grid.ground_z == 0.0
    bar = vars(make_config(2).terrain.tasks["bar_q"])
    mixed = make_config(2, **{"terrain.tasks": {**QUAD_PLANE, "bar_q": bar}}).terrain
    mixed_grid = build_tile_grid(mixed)
    assert mixed_grid.ground_z < -0.1  # the catch plane under the slabs
    assert any(g.type == "box" for g in grid_terrain(mixed_grid, mixed).geoms)


def test_plane_curriculum_promotes_on_tracking_not_on_survival():
    c = CurriculumConfig()
    rng = np.random.default_rng(0)
    n = 4
    new, up, down = update_levels(
        level=np.full(n, 3),
        is_plane=np.ones(n, bool),
        distance=np.zeros(n),
        course=np.full(n, 5.0),
        commanded=np.zeros(n),
        timed_out=np.array([True, True, False, False]),
        levels=10,
        config=c,
        rng=rng,
        tracking=np.array([0.9, 0.5, 0.9, 0.5]),  # stood through a walking command: 0.5
    )
    assert up.tolist() == [True, False, False, False]
    assert down.tolist() == [False, False, True, True]
    assert new.tolist() == [4, 3, 2, 2]


def test_the_env_feeds_its_episode_tracking_to_the_curriculum(make_config):
    """A robot that stands through a 1 m/s command for a whole episode is not promoted."""
    cfg = make_config(
        2,
        **{
            "terrain.tasks": QUAD_PLANE,
            "randomization.enabled": False,
            "randomization.push_interval_s": 0.0,
            "commands.resampling_time_s": 100.0,
            "episode_length_s": 0.2,
            "terrain.init_max_level": 1,
        },
    )
    with MultitaskEnv(cfg) as env:
        env.reset()
        env.level[:] = 1
        env.set_commands(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
        for _ in range(10):
            out = env.step(torch.zeros(2, 12))
        assert bool(out.time_out.all())
        assert env.level.tolist() == [1, 2]  # the one that tracked (standing still) went up


def test_zero_commands_are_drawn_with_their_probability(make_config):
    cfg = make_config(400, **{"terrain.tasks": QUAD_PLANE, "commands.zero_prob": 0.25})
    env = MultitaskEnv(cfg.replace(num_threads=1))
    env.reset()
    still = np.all(env.command == 0.0, axis=1).mean()
    assert still == pytest.approx(0.25, abs=0.07)
    env.close()


def test_feet_count_their_time_in_the_air_and_in_contact(make_config):
    """A robot dropped from above its standing height: its feet count air time while it falls
    and contact time from the touchdown on; a foot's two clocks are never both running."""
    cfg = make_config(
        1,
        **{
            "terrain.tasks": QUAD_PLANE,
            "randomization.enabled": False,
            "randomization.push_interval_s": 0.0,
            "commands.resampling_time_s": 100.0,
        },
    )
    with MultitaskEnv(cfg) as env:
        env.reset()
        env.state[0, 3] += 0.6
        air, contact = [], []
        for _ in range(40):
            env.step(torch.zeros(1, 12))
            air.append(env.feet_air[0].copy())
            contact.append(env.feet_contact[0].copy())
        air, contact = np.array(air), np.array(contact)
        assert np.all((air == 0.0) | (contact == 0.0))
        assert np.all(contact[0] == 0.0) and np.all(air[0] == pytest.approx(env.dt))  # falling
        assert np.all(air[-1] == 0.0) and np.all(contact[-1] > 10 * env.dt)  # standing
        # on the ground, contact time grows by one control period a step
        np.testing.assert_allclose(np.diff(contact[-5:], axis=0), env.dt)


def test_touchdowns_after_a_swing_pay_the_stepping_reward(make_config):
    """A robot dropped from above its standing height lands: each foot's air time is paid at
    touchdown (minus the 0.5 s target), while a velocity is commanded."""
    cfg = make_config(
        1,
        **{
            "terrain.tasks": QUAD_PLANE,
            "randomization.enabled": False,
            "randomization.push_interval_s": 0.0,
            "commands.resampling_time_s": 100.0,
            "rewards.only_positive": False,
        },
    )
    with MultitaskEnv(cfg) as env:
        env.reset()
        env.set_commands(np.array([[0.5, 0.0, 0.0]]))
        env.state[0, 3] += 0.6  # about 0.35 s of fall before the feet touch
        paid = []
        for _ in range(40):
            out = env.step(torch.zeros(1, 12))
            paid.append(float(out.infos["reward_terms"]["quadrupedal/feet_air_time"][0]))
        assert np.all(env.feet_air == 0.0)  # standing: every foot in contact
        nonzero = [p for p in paid if p != 0.0]
        assert nonzero and all(p < 0 for p in nonzero)  # air times under 0.5 s: a penalty
        w = cfg.rewards.weights["quadrupedal"]["feet_air_time"] * env.dt
        total = sum(nonzero) / w  # sum over feet of (air - 0.5)
        assert -4 * 0.5 < total < 0.0
