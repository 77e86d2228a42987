"""Section III-B terminations and the time-outs, on crafted states and in the running env."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from moe_loco_controller.core.observation import projected_gravity
from moe_loco_controller.core.safety import SafetyLimits, quad_tilt_exceeded
from moe_loco_training.env import terminations as tm
from moe_loco_training.env.config import TerminationConfig
from moe_loco_training.env.constants import LINK_BODIES

C = TerminationConfig()


def gravity(roll: float = 0.0, pitch: float = 0.0) -> np.ndarray:
    """Projected gravity of a base rotated by roll about x, then pitch about y (body frame)."""
    cr, sr, cp, sp = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch)
    # R = Rx(roll) Ry(pitch); g_body = R^T (0, 0, -1)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    return (rx @ ry).T @ np.array([0.0, 0.0, -1.0])


def run(gait, g, links=None, gait_time=5.0, switched=False, finite=True):
    n = 1
    lf = np.zeros((n, 13, 3)) if links is None else links
    return bool(
        tm.terminated(
            np.array([gait]),
            g[None],
            lf,
            np.array([gait_time]),
            np.array([switched]),
            np.array([finite]),
            C,
        )[0]
    )


@pytest.mark.parametrize(
    ("roll", "pitch", "expected"),
    [
        (0.0, 0.0, False),
        (0.95, 0.0, False),
        (1.05, 0.0, True),
        (-1.05, 0.0, True),
        (0.0, 1.55, False),
        (0.0, 1.65, True),
        (0.0, -1.65, True),
        (0.0, 2.5, True),
    ],
)
def test_quadrupedal_tilt_limits(roll, pitch, expected):
    g = gravity(roll=roll) if roll else gravity(pitch=pitch)
    assert run(0, g) is expected
    # the same angles as the controller's safety supervisor
    assert quad_tilt_exceeded(g, SafetyLimits()) is expected


def test_tilt_angles_match_the_controller_definition():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(50, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    g = np.stack([projected_gravity(x) for x in q])
    roll, pitch = tm.tilt_angles(g)
    from moe_loco_controller.core.safety import tilt_angles

    for i in range(50):
        assert (roll[i], pitch[i]) == pytest.approx(tilt_angles(g[i]))


def test_quadrupedal_tilt_waits_after_a_switch_from_bipedal():
    up = gravity(pitch=-1.7)  # nose up past vertical: standing on the rear legs
    assert run(0, up, gait_time=0.5, switched=True) is False
    assert run(0, up, gait_time=1.5, switched=True) is True
    assert run(0, up, gait_time=0.5, switched=False) is True  # at an episode start: no grace


def test_bipedal_links_touching_after_one_second():
    for link, name in enumerate(LINK_BODIES):
        lf = np.zeros((1, 13, 3))
        lf[0, link, 2] = 20.0
        forbidden = name not in ("RR_calf", "RL_calf")
        assert run(1, gravity(), lf, gait_time=1.5) is forbidden, name
        assert run(1, gravity(), lf, gait_time=0.5) is False, name  # grace: standing up
    lf = np.zeros((1, 13, 3))
    lf[0, 5, 0] = 0.9  # below the 1 N threshold
    assert run(1, gravity(), lf) is False
    # tilt alone does not terminate the bipedal gait (it stands nose up)
    assert run(1, gravity(pitch=-1.6)) is False


def test_non_finite_state_terminates():
    assert run(0, gravity(), finite=False) is True
    assert run(1, gravity(), gait_time=0.1, finite=False) is True


def test_time_outs():
    assert tm.timed_out(np.array([19.98, 20.0, 20.02]), 20.0).tolist() == [False, True, True]
    x = np.array([1.0, 8.1, -0.1, 4.0, 4.0])
    y = np.array([0.0, 0.0, 0.0, 2.1, -1.9])
    assert tm.out_of_tile(x, y, 8.0, 4.0).tolist() == [False, True, True, True, False]


def test_in_the_env_a_flipped_robot_terminates_and_a_lifted_one_does_not(small_env):
    env = small_env
    env.reset()
    quad = np.flatnonzero(env.gait == 0)
    a, b = int(quad[0]), int(quad[1])
    roll = 1.3
    env.state[a, 4:8] = [math.cos(roll / 2), math.sin(roll / 2), 0.0, 0.0]
    env.state[b, 3] += 0.05  # a little higher: no termination
    out = env.step(torch.zeros(env.num_envs, 12))
    assert bool(out.done[a]) and not bool(out.time_out[a]) and bool(out.infos["terminated"][a])
    assert out.infos["reward_terms"]["quadrupedal/termination"][a] < 0
    assert not bool(out.done[b])
    assert out.infos["reward_terms"]["quadrupedal/termination"][b] == 0
    # the flipped robot was reset: upright again, at the start of its tile
    assert env.episode_time[a] == 0.0 and env.state[a, 4] == pytest.approx(math.cos(0.0), abs=0.02)


def test_in_the_env_bipedal_robots_on_four_feet_terminate_after_one_second(small_env):
    env = small_env
    env.reset()
    bip = env.gait == 1
    assert bip.any() and (~bip).any()
    done_at = np.full(env.num_envs, np.inf)
    for k in range(75):
        out = env.step(torch.zeros(env.num_envs, 12))  # the default pose: feet on the ground
        hit = out.infos["terminated"].numpy() & np.isinf(done_at)
        done_at[hit] = (k + 1) * env.dt
    assert np.all(np.abs(done_at[bip] - 1.02) < 0.03), done_at[bip]
    assert np.all(np.isinf(done_at[~bip]))  # quadrupedal robots stand


def test_in_the_env_a_diverged_robot_terminates_with_finite_outputs(small_env):
    """MuJoCo resets an unstable MjData by itself (its time restarts): caught, terminated."""
    env = small_env
    env.reset()
    env.state[3, env._qvel0 + 6 :] = 1e12  # absurd joint velocities
    out = env.step(torch.zeros(env.num_envs, 12))
    assert bool(out.infos["terminated"][3]) and bool(out.done[3]) and not bool(out.time_out[3])
    assert out.infos["terminated"].sum() == 1
    for t in (out.reward, out.proprio, out.privileged_explicit, out.privileged_implicit):
        assert torch.all(torch.isfinite(t))
    assert env.episode_time[3] == 0.0


def test_in_the_env_episodes_time_out(make_config):
    from moe_loco_training.env import MultitaskEnv

    with MultitaskEnv(make_config(10, episode_length_s=0.1)) as env:
        env.reset()
        outs = [env.step(torch.zeros(10, 12)) for _ in range(5)]
    assert not any(bool(o.done.any()) for o in outs[:4])
    assert bool(outs[4].time_out.all()) and not bool(outs[4].infos["terminated"].any())
    assert outs[4].infos["episode"]["count"] == 10.0
    assert outs[4].infos["episode"]["mean_length_s"] == pytest.approx(0.1)
