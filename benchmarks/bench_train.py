"""make bench-train: PPO iteration time of the full pipeline, split into collection and update.

The real trainer (``moe_loco_training.train.Trainer``) on the packaged ``config/train.yaml``: the
paper-sized MoE actor-critic (Table VI: 6 experts, LSTMs of 256), the multitask environment with
every task of ``config/env.yaml`` (the ``terrain`` stage; ``--stage plane`` for the plane stage),
``num_steps_per_env`` 24, 5 epochs x 4 minibatches. After ``--warmup`` iterations, ``--iterations``
are measured. Collection is the rollout (policy inference + environment steps + GAE); update is
the PPO epochs. samples = robots x steps per iteration; samples/s over collect + update.

The last line is ``train samples_per_s=<x> collect_s=<y> update_s=<z>`` (per iteration, the
median of the measured iterations: robust to other load on a shared machine).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="train", help="training config (default train)")
    p.add_argument("--stage", default="terrain", help="stage whose environment is used")
    p.add_argument("--num-envs", type=int, help="robots (default: the config's / env.yaml's)")
    p.add_argument("--iterations", type=int, default=3, help="measured iterations")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="physics threads (0: one per core)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()

    from moe_loco_training.train.cli import parse_overrides
    from moe_loco_training.train.config import load_train_config
    from moe_loco_training.train.runner import Trainer

    overrides = {
        "runner.tensorboard": False,
        "runner.progress": False,
        "runner.export": False,
        "runner.save_interval": 0,
        "env.num_threads": args.threads,
    }
    if args.num_envs is not None:
        overrides["env.num_envs"] = args.num_envs
    base = load_train_config(args.config)
    if args.stage not in base.stages:
        p.error(f"no stage {args.stage!r} in {args.config} (has {list(base.stages)})")
    for name in base.stages:
        overrides[f"stages.{name}.enabled"] = name == args.stage
    overrides[f"stages.{args.stage}.iterations"] = args.warmup + args.iterations
    overrides.update(parse_overrides(args.set))
    cfg = load_train_config(args.config, overrides)
    trainer = Trainer(cfg, out=None)
    params = sum(t.numel() for t in trainer.model.parameters())
    torch_threads = cfg.torch_threads or torch.get_num_threads()
    t0 = time.perf_counter()
    warm = trainer.run(args.warmup)
    env = trainer.env
    assert env is not None
    first = (
        f" (first iteration: collect {warm[0].collect_s:.1f} s, update {warm[0].update_s:.1f} s)"
        if warm
        else ""
    )
    print(
        f"bench-train: {args.config}/{args.stage}, {env.num_envs} robots x "
        f"{cfg.runner.num_steps_per_env} steps, {len(env.task_names)} tasks, "
        f"{env.num_threads} physics threads, torch {torch_threads} threads, "
        f"model {cfg.model_config().head} {params:,} parameters, "
        f"{cfg.algorithm.num_learning_epochs} epochs x {cfg.algorithm.num_mini_batches} "
        f"minibatches; warmup {time.perf_counter() - t0:.1f} s{first}"
    )
    stats = trainer.run(args.iterations)
    trainer.close()
    for s in stats:
        print(
            f"  iteration {s.iteration}: collect {s.collect_s:.2f} s, update {s.update_s:.2f} s, "
            f"{s.samples_per_s:,.0f} samples/s, reward/step {s.mean_reward:+.4f}"
        )
    collect = statistics.median(s.collect_s for s in stats)
    update = statistics.median(s.update_s for s in stats)
    samples = stats[0].samples
    print(
        f"  collection alone: {samples / collect:,.0f} samples/s; "
        f"update share {update / (collect + update):.0%}"
    )
    print(
        f"train samples_per_s={samples / (collect + update):.1f} collect_s={collect:.3f} "
        f"update_s={update:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
