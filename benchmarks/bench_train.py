"""make bench-train: PPO iteration time of the full pipeline, per model preset, side by side.

The real trainer (``moe_loco_training.train.Trainer``) on a packaged training config (default
``train_walk``: quadrupedal plane walking, 512 robots x 24 steps, 5 epochs x 2 minibatches), once
with each model preset (default ``cpu,paper``: the CPU preset, then Table VI's sizes) in the
same process, one after the other. After ``--warmup`` iterations, ``--iterations`` are measured.
Collection is the rollout (policy inference + environment steps + GAE); update is the PPO epochs.
samples = robots x steps per iteration; samples/s over collect + update. ``physics`` is the time
collection spent inside ``mujoco.rollout`` (the bare physics of the same models, the same robots
and the same actions); ``collect/physics`` says what the rest of the rollout costs on top.

The last line is ``train samples_per_s=<x> collect_s=<y> update_s=<z> collect_over_physics=<r>``
for the first preset, then ``<preset>_samples_per_s=<x>`` for the others (per iteration, the
median of the measured iterations: robust to other load on a shared machine).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def measure(args: argparse.Namespace, preset: str) -> dict[str, float]:
    from moe_loco_training.train.cli import parse_overrides
    from moe_loco_training.train.config import load_train_config
    from moe_loco_training.train.runner import Trainer

    overrides = {
        "runner.tensorboard": False,
        "runner.progress": False,
        "runner.export": False,
        "runner.save_interval": 0,
        "env.num_threads": args.threads,
        "model_preset": preset,
    }
    if args.num_envs is not None:
        overrides["env.num_envs"] = args.num_envs
    base = load_train_config(args.config)
    stage = args.stage or next(n for n, s in base.stages.items() if s.enabled)
    if stage not in base.stages:
        raise SystemExit(f"no stage {stage!r} in {args.config} (has {list(base.stages)})")
    for name in base.stages:
        overrides[f"stages.{name}.enabled"] = name == stage
    overrides[f"stages.{stage}.iterations"] = args.warmup + args.iterations
    overrides.update(parse_overrides(args.set))
    cfg = load_train_config(args.config, overrides)
    trainer = Trainer(cfg, out=None)
    params = sum(t.numel() for t in trainer.model.parameters())
    torch_threads = cfg.torch_threads or torch.get_num_threads()
    t0 = time.perf_counter()
    trainer.run(args.warmup)
    env = trainer.env
    assert env is not None
    print(
        f"bench-train [{preset}]: {args.config}/{stage}, {env.num_envs} robots x "
        f"{cfg.runner.num_steps_per_env} steps, {len(env.task_names)} tasks, "
        f"{env.num_threads} physics threads, torch {torch_threads} threads, "
        f"model {cfg.model_config().head} {params:,} parameters, "
        f"{cfg.algorithm.num_learning_epochs} epochs x {cfg.algorithm.num_mini_batches} "
        f"minibatches; warmup {time.perf_counter() - t0:.1f} s"
    )
    stats, physics = [], []
    for _ in range(args.iterations):
        before = env.physics_seconds
        s = trainer.run(1)[0]
        physics.append(env.physics_seconds - before)
        stats.append(s)
        print(
            f"  iteration {s.iteration}: collect {s.collect_s:.2f} s (physics {physics[-1]:.2f} s)"
            f", update {s.update_s:.2f} s, {s.samples_per_s:,.0f} samples/s"
        )
    trainer.close()
    collect = statistics.median(s.collect_s for s in stats)
    update = statistics.median(s.update_s for s in stats)
    ratio = statistics.median(s.collect_s / p for s, p in zip(stats, physics, strict=True))
    samples = stats[0].samples
    print(
        f"  collection alone: {samples / collect:,.0f} samples/s, bare physics "
        f"{samples / statistics.median(physics):,.0f} steps/s, collect/physics {ratio:.2f}; "
        f"update share {update / (collect + update):.0%}"
    )
    return {
        "samples_per_s": samples / (collect + update),
        "collect_s": collect,
        "update_s": update,
        "collect_over_physics": ratio,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="train_walk", help="training config (default train_walk)")
    p.add_argument("--stage", help="stage whose environment is used (default: the first)")
    p.add_argument("--presets", default="cpu,paper", help="model presets, first one reported")
    p.add_argument("--num-envs", type=int, help="robots (default: the config's / env.yaml's)")
    p.add_argument("--iterations", type=int, default=3, help="measured iterations")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="physics threads (0: one per core)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    presets = [s for s in args.presets.split(",") if s]
    results = {preset: measure(args, preset) for preset in presets}
    first = results[presets[0]]
    others = " ".join(f"{k}_samples_per_s={v['samples_per_s']:.1f}" for k, v in results.items())
    print(
        f"train samples_per_s={first['samples_per_s']:.1f} collect_s={first['collect_s']:.3f} "
        f"update_s={first['update_s']:.3f} collect_over_physics={first['collect_over_physics']:.2f}"
        f" {others}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
