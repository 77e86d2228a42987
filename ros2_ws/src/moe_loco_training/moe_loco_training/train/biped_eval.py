"""Deterministic bipedal tests of a policy on the plane: does it stand up, and does it stay up?

Three tests, ``robots`` robots each, on a flat tile, no domain randomisation, pushes or noise,
the policy's mean action, the paper's bipedal termination (any link but the rear feet and calves
touching the ground once the bipedal command is older than 1 s):

- ``standup``: from the quadrupedal stance, the bipedal command at zero velocity (Table I's
  stand-up: on the rear legs within the 1 s grace, and staying there);
- ``walk_from_stance``: the same with the bipedal walking command (``vx`` forward);
- ``balance_upright``: started on the rear legs (``upright_start``), the bipedal walking command.

Each result is the share of robots still up after ``duration_s``, their mean time to
termination (the duration for those that last) and, for the robots still up, their mean forward
velocity along the bipedal heading over the second half of the run (standing up takes the
first; the walking tests command ``vx``, the stand-up test zero). The latent is the
estimator's unless ``use_privileged`` (the oracle's, for stage-1 checkpoints).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from moe_loco_training.env import MultitaskEnv, load_env_config
from moe_loco_training.env.config import play_variant
from moe_loco_training.models import MoELocoActorCritic, Privileged, on_cpu

BIPED_TESTS = ("standup", "walk_from_stance", "balance_upright")


@dataclass(frozen=True)
class BipedResult:
    test: str
    alive: float
    """Share of the robots still up at the end."""
    mean_time_s: float
    """Mean time to termination [s] (the duration for robots still up)."""
    mean_vx: float = float("nan")
    """Mean forward velocity along the bipedal heading [m/s] over the second half of the run,
    over the robots still up (NaN: none)."""
    command_vx: float = 0.0
    """The forward velocity the test commanded [m/s]."""


def _env(test: str, robots: int, duration_s: float, vx: float) -> MultitaskEnv:
    task = "standup_b" if test == "standup" else "walk_b"
    spec = {
        "kind": "plane",
        "gait": "bipedal",
        "stand_still": test == "standup",
        "upright_start": 1.0 if test == "balance_upright" else 0.0,
    }
    cfg = load_env_config().replace(
        num_envs=robots,
        num_threads=1,
        episode_length_s=duration_s + 1.0,
        **{
            "terrain.levels": 1,
            "terrain.init_max_level": 0,
            "terrain.tasks": {task: spec},
            "terminations.bipedal_grace_s": 1.0,
            "commands.resampling_time_s": duration_s + 1.0,
            "commands.zero_prob": 0.0,
            "commands.gait_switch_prob": 0.0,
        },
    )
    env = MultitaskEnv(play_variant(cfg))
    return env


def _heading_vx(env: MultitaskEnv) -> np.ndarray:
    """(N,) base velocity along each robot's heading (the bipedal forward axis) [m/s]."""
    return env.base_heading_velocity()[0][:, 0]


def evaluate_bipedal(
    model: MoELocoActorCritic,
    robots: int = 16,
    duration_s: float = 10.0,
    vx: float = 0.3,
    use_privileged: bool = False,
    tests: tuple[str, ...] = BIPED_TESTS,
) -> list[BipedResult]:
    """The tests of the module docstring; the model's train/eval mode is restored."""
    model = on_cpu(model)
    was_training = model.training
    model.eval()
    out: list[BipedResult] = []
    steps = round(duration_s / 0.02)
    try:
        for test in tests:
            if test not in BIPED_TESTS:
                raise ValueError(f"unknown bipedal test {test!r}; known: {BIPED_TESTS}")
            env = _env(test, robots, duration_s, vx)
            try:
                obs = env.reset()
                if test != "standup":
                    env.set_commands(np.tile([vx, 0.0, 0.0], (robots, 1)))
                state = model.initial_state(robots)
                alive = np.ones(robots, dtype=bool)
                t_end = np.full(robots, duration_s)
                vx_sum, vx_steps = np.zeros(robots), 0
                with torch.no_grad():
                    for k in range(steps):
                        o = model(
                            obs.proprio,
                            obs.command,
                            state,
                            Privileged(obs.privileged_explicit, obs.privileged_implicit),
                            use_privileged=use_privileged,
                        )
                        state = o.state
                        obs = env.step(o.action_mean)
                        done = obs.done.numpy() & alive
                        t_end[done] = (k + 1) * 0.02
                        alive &= ~obs.done.numpy()
                        if k >= steps // 2:
                            vx_sum += _heading_vx(env)
                            vx_steps += 1
                mean_vx = float(vx_sum[alive].mean() / vx_steps) if alive.any() else math.nan
                cmd = 0.0 if test == "standup" else vx
                out.append(
                    BipedResult(test, float(alive.mean()), float(t_end.mean()), mean_vx, cmd)
                )
            finally:
                env.close()
    finally:
        model.train(was_training)
    return out


def format_results(results: list[BipedResult]) -> str:
    return "; ".join(
        f"{r.test} {r.alive:.2f} up (mean {r.mean_time_s:.1f} s, vx {r.mean_vx:+.2f} m/s of "
        f"{r.command_vx:+.2f})"
        for r in results
    )
