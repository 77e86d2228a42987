"""Deterministic walking tests of a policy on the plane: does it track its velocity commands?

One robot per test command, on a flat tile, no domain randomisation, pushes or observation noise,
the policy's mean action (no exploration noise), the estimator's latent (what runs on the robot;
``use_privileged=True`` for the oracle's). Each robot starts standing at the default pose and
gets its command for ``duration_s``. The first ``settle_s`` are acceleration from standstill and
are not scored; over the rest (10 s by default):

- ``lin_err``: mean over consecutive ``window_s`` windows of |mean v_xy - cmd_xy| [m/s], v the base
  velocity in the heading frame; a 0.5 s window is about one stride, so the figure is how well the
  robot keeps its commanded velocity, not the sway of the base within a stride (which
  ``lin_err_instant``, the same mean over single control steps, includes);
- ``yaw_err``: the same for the world-z yaw rate [rad/s];
- ``fell``: the episode terminated (quadrupedal tilt past the paper's limits, or divergence).

The walking criterion (:meth:`WalkReport.passed`): for every command ``lin_err <= 0.1 m/s`` and
``yaw_err <= 0.2 rad/s``, and no fall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from moe_loco_training.env import EnvConfig, MultitaskEnv, load_env_config
from moe_loco_training.models import MoELocoActorCritic, Privileged, on_cpu


@dataclass(frozen=True)
class WalkCommand:
    """One test: a constant command (heading frame) for the whole run."""

    name: str
    vx: float
    vy: float
    wz: float


WALK_TESTS: tuple[WalkCommand, ...] = (
    WalkCommand("forward_0.5", 0.5, 0.0, 0.0),
    WalkCommand("forward_1.0", 1.0, 0.0, 0.0),
    WalkCommand("sideways_0.3", 0.0, 0.3, 0.0),
    WalkCommand("turn_1.0", 0.0, 0.0, 1.0),
)
"""The tests of ``make bench-learn``: forward at 0.5 and 1.0 m/s, sideways at 0.3 m/s, turning on
the spot at 1.0 rad/s."""

LIN_TOLERANCE = 0.1
YAW_TOLERANCE = 0.2


@dataclass(frozen=True)
class WalkResult:
    command: WalkCommand
    lin_err: float
    lin_err_instant: float
    yaw_err: float
    mean_v: tuple[float, float]
    mean_wz: float
    fell: bool

    def passed(self, lin_tol: float = LIN_TOLERANCE, yaw_tol: float = YAW_TOLERANCE) -> bool:
        return (not self.fell) and self.lin_err <= lin_tol and self.yaw_err <= yaw_tol


@dataclass(frozen=True)
class WalkReport:
    results: tuple[WalkResult, ...]

    def passed(self, lin_tol: float = LIN_TOLERANCE, yaw_tol: float = YAW_TOLERANCE) -> bool:
        return all(r.passed(lin_tol, yaw_tol) for r in self.results)

    @property
    def worst_lin_err(self) -> float:
        return max(r.lin_err for r in self.results)

    @property
    def worst_yaw_err(self) -> float:
        return max(r.yaw_err for r in self.results)

    def lines(self) -> list[str]:
        out = []
        for r in self.results:
            c = r.command
            out.append(
                f"{c.name:<14} cmd ({c.vx:+.2f}, {c.vy:+.2f}, {c.wz:+.2f})  "
                f"v ({r.mean_v[0]:+.3f}, {r.mean_v[1]:+.3f}) wz {r.mean_wz:+.3f}  "
                f"lin_err {r.lin_err:.3f} (instant {r.lin_err_instant:.3f}) "
                f"yaw_err {r.yaw_err:.3f}  {'FELL' if r.fell else 'ok'}"
                f"{'  PASS' if r.passed() else ''}"
            )
        return out


def walk_env_config(base: EnvConfig | None = None) -> EnvConfig:
    """The plane test environment: quadrupedal plane only, nothing random but the spawn."""
    cfg = base or load_env_config()
    return cfg.replace(
        **{
            "terrain.tasks": {"plane_q": {"kind": "plane", "gait": "quadrupedal"}},
            "terrain.levels": 1,
            "terrain.init_max_level": 0,
            "randomization.enabled": False,
            "randomization.push_interval_s": 0.0,
            "curriculum.enabled": False,
            "commands.resampling_time_s": 1.0e9,
            "commands.zero_prob": 0.0,
            "episode_length_s": 1.0e9,
        }
    )


def evaluate_walking(
    model: MoELocoActorCritic,
    tests: Sequence[WalkCommand] = WALK_TESTS,
    duration_s: float = 12.0,
    settle_s: float = 2.0,
    window_s: float = 0.5,
    use_privileged: bool = False,
    env_config: EnvConfig | None = None,
    seed: int = 0,
) -> WalkReport:
    """Run every test in one environment (one robot each); see the module docstring."""
    cfg = walk_env_config(env_config).replace(num_envs=len(tests), seed=seed, num_threads=1)
    model = on_cpu(model)
    was_training = model.training
    model.eval()
    with MultitaskEnv(cfg) as env, torch.no_grad():
        obs = env.reset()
        cmd = np.array([[t.vx, t.vy, t.wz] for t in tests], dtype=np.float64)
        env.set_commands(cmd)
        obs = env.observe()
        state = model.initial_state(env.num_envs)
        steps = round(duration_s / env.dt)
        skip = round(settle_s / env.dt)
        v_log = np.zeros((steps, len(tests), 2))
        w_log = np.zeros((steps, len(tests)))
        fell = np.zeros(len(tests), dtype=bool)
        for k in range(steps):
            out = model(
                obs.proprio,
                obs.command,
                state,
                Privileged(obs.privileged_explicit, obs.privileged_implicit),
                use_privileged=use_privileged,
            )
            obs = env.step(out.action_mean)
            fell |= obs.done.numpy()
            v_head, w_log[k] = env.base_heading_velocity()
            v_log[k] = v_head[:, :2]
            state = out.state
    if was_training:
        model.train()
    win = max(1, round(window_s / env.dt))
    results = []
    for i, t in enumerate(tests):
        v, w = v_log[skip:, i], w_log[skip:, i]
        n = (len(v) // win) * win
        vw = v[:n].reshape(-1, win, 2).mean(axis=1)
        ww = w[:n].reshape(-1, win).mean(axis=1)
        results.append(
            WalkResult(
                command=t,
                lin_err=float(np.linalg.norm(vw - cmd[i, :2], axis=1).mean()),
                lin_err_instant=float(np.linalg.norm(v - cmd[i, :2], axis=1).mean()),
                yaw_err=float(np.abs(ww - cmd[i, 2]).mean()),
                mean_v=(float(v[:, 0].mean()), float(v[:, 1].mean())),
                mean_wz=float(w.mean()),
                fell=bool(fell[i]),
            )
        )
    return WalkReport(tuple(results))
