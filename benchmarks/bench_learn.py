"""make bench-learn: wall time for the CPU recipe to teach the Go2 to walk, from scratch.

Trains ``config/train_walk.yaml`` (the CPU model preset, quadrupedal plane walking; seed fixed by
``--seed``) with the real trainer, and every ``--eval-every`` iterations runs the deterministic
walking tests of :mod:`moe_loco_training.train.walk_eval` on the policy as it runs on the robot
(the estimator's latent, mean actions, no randomisation): forward 0.5 and 1.0 m/s, sideways
0.3 m/s, turning on the spot at 1.0 rad/s, each for 12 s from standstill, the last 10 s scored.
It stops when the criterion holds (every test: mean velocity error <= 0.1 m/s over 0.5 s
windows, mean yaw-rate error <= 0.2 rad/s, no fall) or at ``--cap-min`` wall minutes (90).
Wall time counts everything from the trainer's start: collection, updates and the evaluations.

The run directory (``runs/bench_learn-<seed>-<time>/``) keeps the TensorBoard logs, the last
checkpoint and, when the criterion held, ``policy.onnx``. The last line is
``learn walk_min=<minutes to the criterion, or the cap> samples=<n> iterations=<k> reached=<0|1>``.
Nothing else may run on the machine meanwhile: the figure is wall time on its cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="train_walk")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=25, help="iterations between evaluations")
    p.add_argument("--cap-min", type=float, default=90.0, help="wall-time cap [min]")
    p.add_argument("--run-dir", help="default: runs/bench_learn-<seed>-<time>")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()

    import torch

    from moe_loco_training.train.cli import parse_overrides
    from moe_loco_training.train.config import load_train_config
    from moe_loco_training.train.runner import Trainer
    from moe_loco_training.train.walk_eval import evaluate_walking

    overrides = {"seed": args.seed, "runner.progress": False, "runner.save_interval": 0}
    overrides.update(parse_overrides(args.set))
    cfg = load_train_config(args.config, overrides)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.run_dir or f"runs/bench_learn-{args.seed}-{stamp}")
    t0 = time.monotonic()
    trainer = Trainer(cfg, run_dir=run_dir, out=None)
    print(
        f"bench-learn: {args.config} seed {args.seed}, {cfg.model_preset} preset "
        f"({sum(q.numel() for q in trainer.model.parameters()):,} parameters), "
        f"{cfg.total_iterations} iterations at most, evaluation every {args.eval_every}, "
        f"cap {args.cap_min:.0f} min, torch {torch.get_num_threads()} threads; {run_dir}",
        flush=True,
    )
    reached = False
    samples = 0
    eval_s = 0.0
    try:
        while trainer.iteration < trainer.total_iterations:
            stats = trainer.run(args.eval_every)
            samples += sum(s.samples for s in stats)
            te = time.monotonic()
            report = evaluate_walking(trainer.model)
            eval_s += time.monotonic() - te
            minutes = (time.monotonic() - t0) / 60.0
            last = stats[-1]
            falls = sum(r.fell for r in report.results)
            print(
                f"  it {trainer.iteration:5d}  {minutes:6.1f} min  {samples:>11,} samples  "
                f"reward/step {last.mean_reward:+.4f}  std {last.action_std:.3f}  "
                f"worst lin_err {report.worst_lin_err:.3f} yaw_err {report.worst_yaw_err:.3f} "
                f"falls {falls}  {last.samples_per_s:,.0f} samples/s",
                flush=True,
            )
            if report.passed():
                reached = True
                print("\n".join("    " + line for line in report.lines()), flush=True)
                break
            if minutes >= args.cap_min:
                print("\n".join("    " + line for line in report.lines()), flush=True)
                break
    finally:
        minutes = (time.monotonic() - t0) / 60.0
        trainer.save(run_dir / "checkpoints" / f"ckpt_{trainer.iteration:06d}.pt")
        if reached:
            trainer.export(run_dir / "policy.onnx")
        trainer.close()
    print(f"  evaluations took {eval_s / 60:.1f} of the {minutes:.1f} min")
    walk_min = minutes if reached else max(minutes, args.cap_min)
    print(
        f"learn walk_min={walk_min:.1f} samples={samples} iterations={trainer.iteration} "
        f"reached={int(reached)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
