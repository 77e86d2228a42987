"""make bench-gpu: the MuJoCo Warp backend's throughput on a GPU (issue 16).

Three figures, each measured with the real code:

1. ``env_steps_per_s``: environment steps (one robot, one control step of 4 physics substeps)
   per second of :class:`~moe_loco_training.env.warp_physics.WarpPhysics` alone, the training
   model (every terrain tile) with all robots as the worlds of one batch, at each ``--robots``
   size (default 1,024, 4,096, 16,384; the best is the figure);
2. ``samples_per_s``: PPO samples per second of the trainer on ``env.backend: warp``
   (``train_walk``, ``--ppo-robots`` robots, ``--ppo-iterations`` iterations after one warm-up);
3. ``walk_min``: wall minutes to the walking criterion of ``make bench-learn`` (the same tests,
   ``moe_loco_training.train.walk_eval``) training ``train_walk`` on the backend, capped by
   ``--walk-cap-min`` (``walk_min`` is then the cap and ``reached=0``).

The last line is ``gpu env_steps_per_s=<x> samples_per_s=<y> walk_min=<z>``. Without a CUDA GPU
(Warp sees none) it says so and exits 0; ``--device cpu`` measures Warp's CPU device instead, at
small sizes (``--robots 16,64``), beside the C backend's physics on the same robots, and skips
the walk unless ``--walk-cap-min`` > 0. The whole run must stay well inside 10 minutes on one
H200-class GPU: the defaults take about 6 (the walk capped at 4).

Not run here: the GPU path (no GPU on this machine). On it the environment's arrays, the model
and the rollouts all live on the GPU (``env.arrays``; ``Trainer.device``): per control step only
one value per task and the reset robots' indices reach the host.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any


def _physics_rate(n: int, device: str, steps: int) -> float:
    """Env steps/s of WarpPhysics on the training model with ``n`` worlds."""
    import torch

    from moe_loco_training.env import MultitaskEnv, load_env_config
    from moe_loco_training.env.warp_physics import WarpPhysics

    cfg = load_env_config().replace(num_envs=n, num_threads=1, **{"randomization.enabled": False})
    with MultitaskEnv(cfg) as env:
        env.reset()
        phys = WarpPhysics(env.model, n, device)
        phys.set_state(env.state)
        full = torch.zeros(n, env.substeps, env.model.nu, dtype=torch.float64)
        full[:, :, env.idx.ctrl] = torch.from_numpy(env.default_q)  # stand at the default pose
        phys.rollout(full)  # compile / warm up
        t = time.perf_counter()
        for _ in range(steps):
            phys.rollout(full)
        return n * steps / (time.perf_counter() - t)


def _c_physics_rate(n: int, steps: int) -> float:
    import numpy as np

    from moe_loco_training.env import MultitaskEnv, load_env_config

    cfg = load_env_config().replace(num_envs=n, **{"randomization.enabled": False})
    with MultitaskEnv(cfg) as env:
        env.reset()
        ctrl = np.zeros((n, env.substeps, env.model.nu))
        ctrl[:, :, env.idx.ctrl] = env.default_q
        env.physics_step(ctrl)
        t = time.perf_counter()
        for _ in range(steps):
            env.physics_step(ctrl)
            env.state[:] = env._out_state[:, -1]
        return n * steps / (time.perf_counter() - t)


def _warp_trainer(device: str, robots: int) -> Any:
    """The walking recipe's trainer on the Warp backend, writing nothing."""
    from moe_loco_training.train.config import load_train_config
    from moe_loco_training.train.runner import Trainer

    overrides = {"env.backend": "warp", "env.warp_device": device, "env.num_envs": robots}
    quiet = {"save_interval": 0, "tensorboard": False, "progress": False, "export": False}
    overrides |= {f"runner.{k}": v for k, v in quiet.items()}
    return Trainer(load_train_config("train_walk", overrides), out=None)


def _ppo_rate(device: str, robots: int, iterations: int) -> float:
    trainer = _warp_trainer(device, robots)
    try:
        trainer.train_iteration()  # warm-up (kernels, first allocation)
        samples, wall = 0, 0.0
        for _ in range(iterations):
            s = trainer.train_iteration()
            samples += s.samples
            wall += s.collect_s + s.update_s
        return samples / wall
    finally:
        trainer.close()


def _walk_minutes(device: str, robots: int, cap_min: float) -> tuple[float, int]:
    from moe_loco_training.train.walk_eval import evaluate_walking

    t0 = time.monotonic()
    trainer = _warp_trainer(device, robots)
    try:
        while (time.monotonic() - t0) / 60.0 < cap_min:
            for _ in range(10):
                trainer.train_iteration()
            if evaluate_walking(trainer.model).passed():
                return (time.monotonic() - t0) / 60.0, 1
        return cap_min, 0
    finally:
        trainer.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", help="cuda:0 (default when Warp sees a GPU) or cpu")
    p.add_argument("--robots", default="1024,4096,16384", help="physics sizes, comma-separated")
    p.add_argument("--steps", type=int, default=50, help="control steps per physics size")
    p.add_argument("--ppo-robots", type=int, default=4096)
    p.add_argument("--ppo-iterations", type=int, default=3)
    p.add_argument("--walk-cap-min", type=float, default=4.0)
    args = p.parse_args()

    from moe_loco_training.env.warp_physics import warp_available

    reason = warp_available()
    if reason is not None:
        print(f"bench-gpu: {reason}")
        print("gpu env_steps_per_s=nan samples_per_s=nan walk_min=nan")
        return 0
    import warp as wp

    wp.config.quiet = True
    device = args.device
    if device is None:
        if wp.get_cuda_device_count() == 0:
            print(
                "bench-gpu: no CUDA GPU on this machine (Warp sees none); nothing measured. "
                "`--device cpu --robots 16,64 --ppo-robots 64 --walk-cap-min 0` measures Warp's "
                "CPU device instead"
            )
            print("gpu env_steps_per_s=nan samples_per_s=nan walk_min=nan")
            return 0
        device = "cuda:0"
    sizes = [int(x) for x in args.robots.split(",") if x.strip()]
    rates = {}
    for n in sizes:
        rates[n] = _physics_rate(n, device, args.steps)
        line = f"bench-gpu: {device} physics, {n} robots: {rates[n]:,.0f} env steps/s"
        if device == "cpu":
            c = _c_physics_rate(n, args.steps)
            line += f" (C backend, same robots: {c:,.0f}; Warp/C {rates[n] / c:.3f})"
        print(line, flush=True)
    ppo = _ppo_rate(device, args.ppo_robots, args.ppo_iterations)
    print(f"bench-gpu: PPO on {device}, {args.ppo_robots} robots: {ppo:,.0f} samples/s", flush=True)
    walk, reached = math.nan, 0
    if args.walk_cap_min > 0:
        walk, reached = _walk_minutes(device, args.ppo_robots, args.walk_cap_min)
        print(f"bench-gpu: walking criterion {'reached' if reached else 'not reached'} "
              f"after {walk:.1f} min", flush=True)  # fmt: skip
    print(
        f"gpu env_steps_per_s={max(rates.values()):.1f} samples_per_s={ppo:.1f} walk_min={walk:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
