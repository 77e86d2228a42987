"""``moe-loco-train``: train a MoE-Loco policy from a YAML configuration.

    moe-loco-train                                  # config/train.yaml: the paper's schedule
    moe-loco-train --config train_ci                # a packaged config by name, or a path
    moe-loco-train --set iteration_scale=0.01 --set env.num_envs=512 --seed 3
    moe-loco-train --resume runs/<run>/checkpoints/ckpt_000500.pt    # exact continuation
    moe-loco-train --config train --init runs/<oracle>/model.pt      # weights from a checkpoint

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


def main(argv: Sequence[str] | None = None) -> int:
    """``moe-loco-train``: see ``--help``."""
    args = _parser().parse_args(argv)
    from moe_loco_training.train.runner import Trainer

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
            run_dir = args.run_dir or Path(config.run_root) / f"{config.run_name}-{stamp}"
            trainer = Trainer(config, run_dir=run_dir)
            if args.init is not None:
                trainer.init_from(args.init)
    except (TrainConfigError, EnvConfigError, ValueError) as e:
        print(f"moe-loco-train: {e}", file=sys.stderr)
        return 2
    if args.quiet:
        trainer.out = None
    print(
        f"moe-loco-train: {trainer.total_iterations} iterations over "
        f"{[n for n, _, _ in trainer.schedule]} from iteration {trainer.iteration}, "
        f"run dir {run_dir}",
        file=sys.stderr,
    )
    try:
        trainer.run(args.iterations)
    except KeyboardInterrupt:
        # mid-iteration state is not a resumable boundary: the last checkpoint is
        print(
            f"moe-loco-train: interrupted in iteration {trainer.iteration + 1}; resume from the "
            f"last checkpoint in {Path(run_dir) / 'checkpoints'}",
            file=sys.stderr,
        )
        return 1
    finally:
        trainer.close()
    done = trainer.iteration >= trainer.total_iterations
    policy = Path(run_dir) / "policy.onnx"
    exported = f", exported {policy}" if done and policy.is_file() else ""
    print(
        f"moe-loco-train: {'finished' if done else 'stopped'} at iteration {trainer.iteration}"
        f"/{trainer.total_iterations}; {run_dir}{exported}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
