"""``moe-loco-train``: train a MoE-Loco policy from a YAML configuration.

    moe-loco-train                                  # config/train.yaml: the paper's schedule
    moe-loco-train --config train_ci                # a packaged config by name, or a path
    moe-loco-train --set iteration_scale=0.01 --set env.num_envs=512 --seed 3
    moe-loco-train --resume runs/<run>/checkpoints/ckpt_000500.pt    # exact continuation
    moe-loco-train --config train --init runs/<oracle>/model.pt      # weights from a checkpoint
    torchrun --nproc_per_node=2 .venv/bin/moe-loco-train --config train_walk   # 2 ranks

Under ``torchrun`` (``WORLD_SIZE`` > 1) every process is one rank of a data-parallel run
(:mod:`moe_loco_training.train.distributed`): all get the same arguments, rank 0 names the run
directory and alone writes into it and prints.

A run writes ``config.json``, TensorBoard logs (``tb/``), checkpoints (``checkpoints/``, each also
readable by ``moe-loco-export --checkpoint``), ``model.pt`` (the last state) and, once the schedule
is complete, ``policy.onnx`` through the exporter. Exit codes: 0 done, 1 failed, 2 bad arguments
or configuration.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from moe_loco_training.env import EnvConfigError
from moe_loco_training.train import distributed
from moe_loco_training.train.config import (
    TrainConfigError,
    from_dict,
    load_train_config,
    set_dotted,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="moe-loco-train", description="Train a MoE-Loco policy (PPO, two stages, PAS)."
    )
    p.add_argument("--config", help="a training YAML (path, or packaged name; default train)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (dotted; VALUE is YAML), e.g. env.num_envs=64",
    )
    p.add_argument("--seed", type=int, help="shorthand for --set seed=N")
    p.add_argument("--run-dir", type=Path, help="output directory (default runs/<name>-<time>)")
    p.add_argument("--resume", type=Path, help="continue a checkpoint exactly")
    p.add_argument("--init", type=Path, help="start from a checkpoint's model weights")
    p.add_argument("--iterations", type=int, help="stop after this many more iterations")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TrainConfigError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _device_of(args: argparse.Namespace) -> str:
    """``cuda`` or ``cpu``: where the run will train (its environment's backend and device),
    which picks the process group's backend (nccl or gloo) before anything else happens; a
    configuration that does not load trains nowhere, and ``_main`` then says why."""
    from moe_loco_training.train.runner import Trainer, env_config_for_stage

    try:
        overrides = parse_overrides(args.set)
        if args.resume is not None and args.config is None:
            data = Trainer.checkpoint_config(args.resume)
            for k, v in overrides.items():
                data = set_dotted(data, k, v)
            config = from_dict(data)
        else:
            config = load_train_config(args.config, overrides)
        env = env_config_for_stage(config, 0)
    except Exception:  # reported by _main, with the real message
        return "cpu"
    return "cuda" if env.backend == "warp" and env.warp_device.startswith("cuda") else "cpu"


def main(argv: Sequence[str] | None = None) -> int:
    """``moe-loco-train``: see ``--help``."""
    args = _parser().parse_args(argv)
    # the C backend and Warp's CPU device train on the CPU (gloo); Warp on CUDA: nccl, one GPU
    # per rank (cuda:LOCAL_RANK)
    try:
        ctx = distributed.init(_device_of(args))
    except (RuntimeError, ValueError) as e:  # e.g. WORLD_SIZE set without torchrun's other vars
        print(f"moe-loco-train: cannot join the process group: {e}", file=sys.stderr)
        return 2
    try:
        return _main(args, ctx)
    finally:
        distributed.shutdown()


def _main(args: argparse.Namespace, ctx: distributed.DistContext) -> int:
    from moe_loco_training.train.runner import Trainer

    who = f"moe-loco-train[rank {ctx.rank}/{ctx.world_size}]" if ctx.enabled else "moe-loco-train"

    def say(text: str) -> None:
        if ctx.is_main:
            print(f"moe-loco-train: {text}", file=sys.stderr)

    try:
        overrides = parse_overrides(args.set)
        if args.seed is not None:
            overrides["seed"] = args.seed
        if args.resume is not None and args.init is not None:
            raise TrainConfigError("--resume and --init exclude each other")
        if args.resume is not None:
            config = None
            if args.config is not None:
                config = load_train_config(args.config, overrides)
            elif overrides:  # the checkpoint's own configuration, overridden
                data = Trainer.checkpoint_config(args.resume)
                for k, v in overrides.items():
                    data = set_dotted(data, k, v)
                config = from_dict(data)
            run_dir = args.run_dir or args.resume.resolve().parent.parent
            trainer = Trainer.resume(args.resume, run_dir=run_dir, config=config)
        else:
            config = load_train_config(args.config, overrides)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            # several ranks: rank 0's clock names the directory (others may read a later second)
            stamp = distributed.broadcast_object(stamp, ctx)
            run_dir = args.run_dir or Path(config.run_root) / f"{config.run_name}-{stamp}"
            trainer = Trainer(config, run_dir=run_dir)
            if args.init is not None:
                trainer.init_from(args.init)
    except (TrainConfigError, EnvConfigError, ValueError) as e:
        print(f"{who}: {e}", file=sys.stderr)  # every rank: the fault may be one node's
        return 2
    if args.quiet or not ctx.is_main:
        trainer.out = None
    ranks = f" on {ctx.world_size} ranks ({ctx.backend})" if ctx.enabled else ""
    say(
        f"{trainer.total_iterations} iterations over "
        f"{[n for n, _, _ in trainer.schedule]} from iteration {trainer.iteration}{ranks}, "
        f"run dir {run_dir}"
    )
    try:
        trainer.run(args.iterations)
    except KeyboardInterrupt:
        # mid-iteration state is not a resumable boundary: the last checkpoint is
        say(
            f"interrupted in iteration {trainer.iteration + 1}; resume from the "
            f"last checkpoint in {Path(run_dir) / 'checkpoints'}"
        )
        return 1
    finally:
        trainer.close()
    done = trainer.iteration >= trainer.total_iterations
    policy = Path(run_dir) / "policy.onnx"
    exported = f", exported {policy}" if done and policy.is_file() else ""
    say(
        f"{'finished' if done else 'stopped'} at iteration {trainer.iteration}"
        f"/{trainer.total_iterations}; {run_dir}{exported}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
