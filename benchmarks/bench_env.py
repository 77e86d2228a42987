"""make bench-env: env steps/s of the full multitask environment vs bare physics, in one run.

Both loops use the same environment object: the same N model copies (domain-randomised), the
same ``mujoco.rollout`` thread pool and the same 4 physics substeps per control step.

1. env: ``MultitaskEnv.step`` with a seeded random policy (uniform actions in +-``--action``,
   around the default pose): observations (torch builders), privileged state, every Table V term,
   terminations, resets, curriculum, commands, domain randomisation (pushes, latency, noise).
2. physics: ``MultitaskEnv.physics_step`` alone, the same robots from the same start, joint
   targets from the same random action distribution, the state fed back, nothing else (no
   observations, rewards, terminations or resets).

Rates are in environment steps (one robot, one control step = 4 physics steps) per second; each
loop's best of ``--repeats`` is printed; the ratio is the median over the repeats of env /
physics measured back to back (one pair shares the machine's load). The fixed per-step cost of
the Python side is amortised over the robots: the ratio grows with N (about 0.5 at N = 16,
0.85 at 256 on 2 cores). The last line is
``env steps_per_s=<x> physics_steps_per_s=<y> overhead_ratio=<x/y>``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--steps", type=int, default=150, help="control steps measured per loop")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3, help="alternating env/physics measurements")
    p.add_argument("--action", type=float, default=0.3, help="random action amplitude")
    p.add_argument("--threads", type=int, default=0, help="physics threads (0: one per core)")
    args = p.parse_args()

    from moe_loco_training.env import MultitaskEnv, load_env_config

    cfg = load_env_config().replace(num_envs=args.num_envs, num_threads=args.threads)
    env = MultitaskEnv(cfg)
    n = env.num_envs
    print(
        f"bench-env: {n} robots, {len(env.task_names)} tasks x {env.tiles.levels} levels, "
        f"{env.model.ngeom} geoms, {env.num_threads} physics threads, "
        f"{env.substeps} substeps of {env.config.timestep} s"
    )
    rng = np.random.default_rng(0)

    def actions() -> torch.Tensor:
        return torch.from_numpy(rng.uniform(-args.action, args.action, (n, 12))).float()

    env.reset()
    start = env.state.copy()
    ctrl = np.zeros_like(env._ctrl)
    ctrl[:, :, env.idx.ctrl] = env.default_q

    env_rates, phys_rates, shares, resets = [], [], [], 0
    for _ in range(args.repeats):
        for _ in range(args.warmup):
            env.step(actions())
        t = time.perf_counter()
        inside = env.physics_seconds
        for _ in range(args.steps):
            out = env.step(actions())
            resets += int(out.done.sum())
        elapsed = time.perf_counter() - t
        env_rates.append(n * args.steps / elapsed)
        shares.append((env.physics_seconds - inside) / elapsed)

        saved = env.state.copy()
        env.state[:] = start
        t = time.perf_counter()
        for _ in range(args.steps):
            targets = env.default_q + env.control.action_scale * actions().double().numpy()
            ctrl[:, :, env.idx.ctrl] = targets[:, None, :]
            env.physics_step(ctrl)
            env.state[:] = env._out_state[:, -1]
        phys_rates.append(n * args.steps / (time.perf_counter() - t))
        env.state[:] = saved
    env.close()

    # each repeat measures env and physics back to back: the ratio of a pair shares the
    # machine's conditions, so the reported ratio is the median of the pairs' ratios (the rates
    # are each loop's best)
    ratio = float(np.median(np.array(env_rates) / np.array(phys_rates)))
    x, y = max(env_rates), max(phys_rates)
    print(
        f"env:     {', '.join(f'{r:.0f}' for r in env_rates)} env steps/s "
        f"({resets} resets; share of env.step inside mujoco.rollout: "
        f"{', '.join(f'{100 * v:.0f}%' for v in shares)})"
    )
    levels = ", ".join(f"{k} {v:.1f}" for k, v in out.infos["curriculum"].items())
    print(f"mean curriculum level per task at the end: {levels}")
    print(
        f"physics: {', '.join(f'{r:.0f}' for r in phys_rates)} env steps/s "
        f"= {env.substeps * y:.0f} physics substeps/s"
    )
    pairs = ", ".join(f"{e / p:.3f}" for e, p in zip(env_rates, phys_rates, strict=True))
    print(f"env/physics ratio per back-to-back pair: {pairs}")
    print(f"env steps_per_s={x:.0f} physics_steps_per_s={y:.0f} overhead_ratio={ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
