"""``moe-loco-analyze``: the paper's analyses of checkpoints and policy files.

    moe-loco-analyze gradients CKPT [CKPT ...]   # Tables III/IV: gradient conflict between tasks
    moe-loco-analyze usage POLICY                # Fig. 7: mean gate weight per expert and task
    moe-loco-analyze tsne POLICY|SAMPLES.npz     # Fig. 8: t-SNE of the gate outputs
    moe-loco-analyze compose POLICY --preset dribble [--via-service]   # Fig. 9: a composed gait
    moe-loco-analyze adapt CKPT --iterations 150   # Fig. 10: a new expert for a three-legged gait
    moe-loco-analyze report POLICY [--checkpoint CKPT ...] --out docs/analysis/NAME  # all of it

Each writes its files into ``--out`` (default ``runs/analysis/<command>-<time>/``) and prints
a Markdown summary. Exit codes: 0 done, 2 bad input (a file that is not a checkpoint or policy,
an unknown track or preset, a refused expert scale, a bad option).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from moe_loco_training.analysis.gate_samples import SINGLE_TASK_TRACKS

if TYPE_CHECKING:
    from moe_loco_training.analysis.gate_samples import GateSamples
    from moe_loco_training.benchmark.runner import BenchmarkConfig

DEFAULT_ITERATIONS = 20
"""Gradient iterations by default: 512 robots x 24 steps x 20 = 246 k samples, 0.5 % of the
paper's 4,096 x 24 x 500 (49 M); about 2-4 minutes of this 2-core machine per checkpoint."""
DEFAULT_TIME_CAP_S = 20.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="moe-loco-analyze", description="The MoE-Loco paper's analyses (issue 15)."
    )
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser(
        "gradients",
        help="per-task surrogate gradients: cosine similarity and negative entries (Tables III/IV)",
        description="Continue each training checkpoint for --iterations iterations with the "
        "trainer's own code, take the PPO surrogate's gradient per task before each update, and "
        "tabulate the pairwise cosine similarity and negative-entry ratio; several checkpoints "
        "(e.g. MoE and w/o MoE) side by side.",
    )
    g.add_argument("checkpoints", nargs="+", type=Path, metavar="CKPT")
    g.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    g.add_argument(
        "--frozen", action="store_true", help="undo every update: all rollouts of the checkpoint"
    )
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the checkpoint's training config (fresh environment), e.g. env.num_envs=64",
    )
    g.add_argument("--torch-threads", type=int, default=1)
    g.add_argument("--out", type=Path)

    for name, help_ in (
        ("usage", "mean gate weight per expert for each task (Fig. 7): PNG, CSV"),
        ("tsne", "t-SNE of the gate outputs by task and gait (Fig. 8): PNG, CSV"),
    ):
        s = sub.add_parser(name, help=help_, description=help_)
        s.add_argument(
            "policy",
            type=Path,
            metavar="POLICY" if name == "usage" else "POLICY|SAMPLES",
            help="an .onnx policy file"
            + ("" if name == "usage" else ", or the gate_samples.npz that usage writes"),
        )
        s.add_argument(
            "--tracks",
            help=f"comma-separated single-task tracks (default: {','.join(SINGLE_TASK_TRACKS)})",
        )
        s.add_argument("--trials", type=int, default=1, help="trials per track (default 1)")
        s.add_argument(
            "--time-cap",
            type=float,
            default=DEFAULT_TIME_CAP_S,
            help=f"seconds of RUN per trial at most (default {DEFAULT_TIME_CAP_S:g})",
        )
        s.add_argument("--jobs", type=int, default=0, help="worker processes (0: one per core)")
        s.add_argument("--seed", type=int)
        s.add_argument("--config", type=Path, help="benchmark YAML (default config/benchmark.yaml)")
        s.add_argument("--expert-scale", help="w of eq. (5), comma-separated, one per expert")
        s.add_argument("--preset", help="an expert-scale preset of the controller's presets YAML")
        s.add_argument("--out", type=Path)
        if name == "tsne":
            s.add_argument(
                "--max-points", type=int, default=2000, help="embed at most this many steps"
            )
            s.add_argument("--perplexity", type=float, default=30.0)
    c = sub.add_parser(
        "compose",
        help="the gait of a composed gate (eq. 5) beside the policy as trained (Fig. 9)",
        description="Run the policy in the lockstep sim as trained (w = 1) and with the composed "
        "expert scale, under one script (stand, hand over, walk at --vx/--vy/--wz), and compare "
        "their gaits: foot clearance per leg over time, stride frequency, duty factor, contact "
        "synchrony, body velocity. --via-service also sets the scale through a controller "
        "node's set_expert_scale service over ROS and checks the motion is identical.",
    )
    c.add_argument("policy", type=Path, metavar="POLICY")
    which = c.add_mutually_exclusive_group(required=True)
    which.add_argument("--preset", help="a preset of the controller's presets YAML, e.g. dribble")
    which.add_argument("--expert-scale", help="w of eq. (5), comma-separated, one per expert")
    c.add_argument("--presets", type=Path, help="presets YAML (default: the controller's)")
    c.add_argument("--vx", type=float, default=0.5)
    c.add_argument("--vy", type=float, default=0.0)
    c.add_argument("--wz", type=float, default=0.0)
    c.add_argument("--gait", type=int, default=0, help="0 quadrupedal, 1 bipedal")
    c.add_argument("--duration", type=float, default=10.0, help="sim seconds per run (10)")
    c.add_argument("--contact", default="menagerie", help="sim contact preset (menagerie)")
    c.add_argument("--seed", type=int, default=0, help="start-pose noise seed")
    c.add_argument(
        "--via-service",
        action="store_true",
        help="also set the scale through a controller node's service (ROS) and compare",
    )
    c.add_argument("--out", type=Path)

    a = sub.add_parser(
        "adapt",
        help="a new expert for a three-legged gait, the original experts frozen (Fig. 10)",
        description="From a training checkpoint: append one expert, freeze the estimator, the "
        "actor LSTM and the original experts, and train the gate and the new expert (and the "
        "critic) on walking with one front leg held up, on the plane and on slopes; curves, "
        "before/after numbers and the exported policy (one expert more in its metadata).",
    )
    a.add_argument("checkpoint", type=Path, metavar="CKPT")
    a.add_argument("--iterations", type=int, default=150)
    a.add_argument("--num-envs", type=int, default=256)
    a.add_argument("--lift-leg", choices=("FR", "FL"), default="FR")
    a.add_argument(
        "--action-std", type=float, default=0.35, help="action std to restart from (0: keep)"
    )
    a.add_argument("--eval-steps", type=int, default=250, help="control steps per evaluation")
    a.add_argument(
        "--gate-bias",
        type=float,
        default=0.0,
        help="the new expert's gate logit bias relative to the mean of the others (0: an equal "
        "share; at -2, ~2 %%, the gate never took it up in 150 iterations)",
    )
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a.add_argument("--torch-threads", type=int, default=0)
    a.add_argument("--out", type=Path)

    r = sub.add_parser(
        "report",
        help="every analysis of one policy into one folder with a README (one command)",
        description="Usage, t-SNE, composition (presets file's dribble and a dribble-like scale "
        "from the policy's own usage), gradient conflict of the given checkpoints, adaptation; "
        "README.md in --out links the figures and tables.",
    )
    r.add_argument("policy", type=Path, metavar="POLICY")
    r.add_argument("--checkpoint", type=Path, action="append", default=[], metavar="CKPT")
    r.add_argument("--trials", type=int, default=1)
    r.add_argument("--time-cap", type=float, default=DEFAULT_TIME_CAP_S)
    r.add_argument("--tracks", help="comma-separated single-task tracks (default: all)")
    r.add_argument("--jobs", type=int, default=0)
    r.add_argument("--gradient-iterations", type=int, default=DEFAULT_ITERATIONS)
    r.add_argument("--adapt-iterations", type=int, default=0)
    r.add_argument("--adapt-envs", type=int, default=256)
    r.add_argument("--compose-duration", type=float, default=10.0)
    r.add_argument("--out", type=Path)
    return p


def _out_dir(args: argparse.Namespace) -> Path:
    out = args.out or Path("runs") / "analysis" / f"{args.command}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    return out


class UsageError(ValueError):
    """Bad input: exit code 2 with the message."""


def run_gradients(args: argparse.Namespace) -> int:
    from moe_loco_training.analysis.checkpoints import CheckpointError, trainer_from_checkpoint
    from moe_loco_training.analysis.conflict_tables import csv_report, markdown_report
    from moe_loco_training.analysis.gradient_conflict import measure_gradient_conflict
    from moe_loco_training.train.cli import parse_overrides
    from moe_loco_training.train.config import TrainConfigError

    if args.iterations < 1:
        raise UsageError(f"--iterations must be >= 1, got {args.iterations}")
    try:
        overrides = parse_overrides(args.set)
    except TrainConfigError as e:
        raise UsageError(str(e)) from None
    threads = torch.get_num_threads()
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    results = []
    try:
        trainers, notes = [], []
        for ckpt in args.checkpoints:  # every file checked before any long work
            note: list[str] = []
            try:
                trainers.append(trainer_from_checkpoint(ckpt, overrides, note))
            except (CheckpointError, TrainConfigError, ValueError) as e:
                raise UsageError(str(e)) from None
            notes.append("; ".join(note))
        for ckpt, trainer, note in zip(args.checkpoints, trainers, notes, strict=True):
            print(
                f"moe-loco-analyze gradients: {ckpt} ({trainer.model.config.head}) from iteration "
                f"{trainer.iteration}, {args.iterations} iterations; {note}",
                file=sys.stderr,
            )

            def progress(k: int, _g: object) -> None:
                print(f"  iteration {k}/{args.iterations}", file=sys.stderr, flush=True)

            try:
                r = measure_gradient_conflict(
                    trainer, args.iterations, str(ckpt), args.frozen, progress
                )
                r.environment = note
                results.append(r)
            finally:
                trainer.close()
    finally:
        torch.set_num_threads(threads)
    out = _out_dir(args)
    md = markdown_report(results)
    (out / "gradients.md").write_text(md)
    (out / "gradients.csv").write_text(csv_report(results))
    print(md)
    print(f"moe-loco-analyze: wrote {out / 'gradients.md'} and gradients.csv", file=sys.stderr)
    return 0


def _benchmark_config(args: argparse.Namespace) -> BenchmarkConfig:
    from moe_loco_training.benchmark.runner import load_benchmark_config
    from moe_loco_training.env.config import EnvConfigError

    try:
        cfg = load_benchmark_config(args.config)
        tracks = SINGLE_TASK_TRACKS
        if args.tracks:
            tracks = tuple(t.strip() for t in args.tracks.split(",") if t.strip())
        changes: dict[str, object] = {
            "tracks": tracks,
            "trials": args.trials,
            "time_cap_s": args.time_cap,
            "jobs": args.jobs,
        }
        if args.seed is not None:
            changes["seed"] = args.seed
        return dataclasses.replace(cfg, **changes)
    except (EnvConfigError, ValueError) as e:
        raise UsageError(str(e)) from None


def _samples(args: argparse.Namespace) -> GateSamples:
    from moe_loco_training.analysis.gate_samples import (
        GateSampleError,
        GateSamples,
        collect_gate_samples,
    )

    if args.policy.suffix == ".npz" and args.command == "tsne":
        try:
            return GateSamples.load(args.policy)
        except GateSampleError as e:
            raise UsageError(str(e)) from None
    if not args.policy.is_file():
        raise UsageError(f"{args.policy}: no such file")
    scale = None
    if args.expert_scale is not None:
        try:
            scale = [float(w) for w in args.expert_scale.split(",")]
        except ValueError:
            raise UsageError(
                f"--expert-scale {args.expert_scale!r}: expected comma-separated numbers"
            ) from None
    cfg = _benchmark_config(args)
    print(
        f"moe-loco-analyze {args.command}: {args.policy} on {len(cfg.tracks)} track(s) x "
        f"{cfg.trials} trial(s), at most {cfg.time_cap_s:g} s each",
        file=sys.stderr,
    )
    try:
        return collect_gate_samples(args.policy, cfg, scale, args.preset)
    except GateSampleError as e:
        raise UsageError(str(e)) from None


def run_usage(args: argparse.Namespace) -> int:
    from moe_loco_training.analysis.expert_usage import (
        expert_usage,
        plot_usage,
        usage_csv,
        usage_table,
    )

    samples = _samples(args)
    usage = expert_usage(samples)
    if not usage:
        raise UsageError(f"{args.policy}: no RUN step in any trial (nothing to average)")
    out = _out_dir(args)
    samples.save(out / "gate_samples.npz")
    (out / "usage.csv").write_text(usage_csv(usage, samples.expert_labels))
    scale = ", ".join(f"{w:g}" for w in samples.expert_scale)
    plot_usage(
        usage,
        samples.expert_labels,
        out / "usage.png",
        f"Expert usage: {Path(samples.policy).name} (expert scale {scale})",
    )
    print(f"# Expert usage (Fig. 7): {samples.policy}, expert scale [{scale}]\n")
    print(usage_table(usage, samples.expert_labels))
    print(
        f"moe-loco-analyze: wrote {out / 'usage.png'}, usage.csv and gate_samples.npz",
        file=sys.stderr,
    )
    return 0


def run_tsne(args: argparse.Namespace) -> int:
    from moe_loco_training.analysis.gate_tsne import embed_gates, embedding_csv, plot_embedding

    samples = _samples(args)
    try:
        emb = embed_gates(samples, args.max_points, args.seed or 0, args.perplexity)
    except ValueError as e:
        raise UsageError(f"{args.policy}: {e}") from None
    out = _out_dir(args)
    (out / "tsne.csv").write_text(embedding_csv(emb))
    plot_embedding(
        emb,
        out / "tsne.png",
        f"t-SNE of the gate outputs: {Path(samples.policy).name} "
        f"({len(emb.xy)} steps, perplexity {emb.perplexity:g})",
    )
    counts = ", ".join(f"{t} {int((emb.task == t).sum())}" for t in dict.fromkeys(emb.task))
    print(f"t-SNE of {len(emb.xy)} gate outputs of {samples.policy}: {counts}")
    print(f"moe-loco-analyze: wrote {out / 'tsne.png'} and tsne.csv", file=sys.stderr)
    return 0


def run_compose(args: argparse.Namespace) -> int:
    from moe_loco_controller.core.policy import PolicyRuntime
    from moe_loco_controller.core.policy_metadata import PolicyFileError
    from moe_loco_sim.lockstep import LockstepConfig
    from moe_loco_training.analysis.composition import (
        ComposeScript,
        gait_metrics,
        metrics_json,
        metrics_table,
        plot_runs,
        run_composed,
        service_run,
    )

    if not args.policy.is_file():
        raise UsageError(f"{args.policy}: no such file")
    try:
        script = ComposeScript(
            duration=args.duration, vx=args.vx, vy=args.vy, wz=args.wz, gait=args.gait
        )
        runtime = PolicyRuntime(args.policy, device="cpu", presets_path=args.presets)
        if args.gait not in range(len(runtime.metadata.gaits)):
            raise ValueError(f"--gait {args.gait}: the policy has gaits {runtime.metadata.gaits}")
        weights = None
        if args.expert_scale is not None:
            try:
                weights = [float(w) for w in args.expert_scale.split(",")]
            except ValueError:
                raise ValueError(
                    f"--expert-scale {args.expert_scale!r}: expected comma-separated numbers"
                ) from None
            scale = runtime.set_expert_scale(weights)
        else:
            scale = runtime.set_expert_preset(args.preset)
        config = LockstepConfig(contact=args.contact, seed=args.seed)
    except (PolicyFileError, ValueError, OSError) as e:
        raise UsageError(str(e)) from None
    name = args.preset or "w"
    print(
        f"moe-loco-analyze compose: {args.policy} as trained and with {name} "
        f"{[float(w) for w in scale]}, {args.duration:g} s each",
        file=sys.stderr,
    )
    base = run_composed(
        PolicyRuntime(args.policy, device="cpu"), None, script, config, label="as trained"
    )
    composed = run_composed(runtime, None, script, config, label=f"composed ({name})")
    runs = [base, composed]
    service_note = ""
    if args.via_service:
        via, answer = service_run(args.policy, weights, args.preset, script, config)
        same = via.trace.digest() == composed.trace.digest()
        service_note = (
            f"Through the controller's set_expert_scale service ({answer}): the motion is "
            f"{'IDENTICAL to' if same else 'DIFFERENT from'} the composed run (trace digest "
            f"{via.trace.digest()[:16]} vs {composed.trace.digest()[:16]}).\n"
        )
        if not same:
            print(service_note, file=sys.stderr)
            return 1
    metrics = [gait_metrics(r, script) for r in runs]
    out = _out_dir(args)
    (out / "compose.json").write_text(metrics_json(metrics))
    plot_runs(runs, out / "compose.png", f"Skill composition: {args.policy.name}, {name}")
    md = (
        f"# Skill composition (Fig. 9): {args.policy.name}, {name}\n\n"
        f"Lockstep sim ({args.contact} contacts), command vx {args.vx:+.2f} vy {args.vy:+.2f} "
        f"wz {args.wz:+.2f}, gait {args.gait}; metrics over t = {metrics[0].window_s[0]:.1f}-"
        f"{metrics[0].window_s[1]:.1f} s.\n\n{metrics_table(metrics)}\n{service_note}"
    )
    (out / "compose.md").write_text(md)
    print(md)
    print(
        f"moe-loco-analyze: wrote {out / 'compose.png'}, compose.md, compose.json", file=sys.stderr
    )
    return 0


def run_adapt(args: argparse.Namespace) -> int:
    from moe_loco_training.analysis.adaptation import (
        adaptation_trainer,
        plot_curves,
        result_table,
        run_adaptation,
    )
    from moe_loco_training.analysis.checkpoints import CheckpointError
    from moe_loco_training.env import EnvConfigError
    from moe_loco_training.train.cli import parse_overrides
    from moe_loco_training.train.config import TrainConfigError

    if args.iterations < 1 or args.num_envs < 1 or args.eval_steps < 1:
        raise UsageError("--iterations, --num-envs and --eval-steps must be >= 1")
    out = _out_dir(args)
    threads = torch.get_num_threads()
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    try:
        try:
            trainer, original, n = adaptation_trainer(
                args.checkpoint,
                args.iterations,
                args.num_envs,
                args.lift_leg,
                args.action_std if args.action_std > 0 else None,
                args.seed,
                parse_overrides(args.set),
                run_dir=out,
                gate_bias=args.gate_bias,
            )
        except (CheckpointError, TrainConfigError, EnvConfigError, ValueError) as e:
            raise UsageError(str(e)) from None
        print(
            f"moe-loco-analyze adapt: {args.checkpoint}: {n} experts + 1 new, {args.iterations} "
            f"iterations of {args.num_envs} robots on {args.lift_leg} held up",
            file=sys.stderr,
        )

        def progress(k: int, s: object) -> None:
            if k % 10 == 0 or k == args.iterations:
                air = getattr(s, "reward_terms", {}).get("quadrupedal/lifted_foot_air", 0.0)
                print(f"  iteration {k}: reward {s.mean_reward:.4f} lifted_foot_air {air:.4f}",
                      file=sys.stderr, flush=True)  # fmt: skip

        try:
            result = run_adaptation(trainer, original, n, args.eval_steps, progress)
            trainer.save(out / "adapted.pt")
            trainer.export(out / "adapted.onnx")
        finally:
            trainer.close()
    finally:
        torch.set_num_threads(threads)
    (out / "adapt.json").write_text(result.to_json())
    plot_curves(result, out / "adapt_curves.png", f"Adaptation: {args.checkpoint.name}")
    md = (
        f"# Adaptation with a new expert (Fig. 10): {args.checkpoint}\n\n"
        f"{result.iterations} iterations ({result.samples:,} samples, {result.wall_s / 60:.1f} "
        f"min), leg {args.lift_leg} held up; original experts, estimator and actor LSTM "
        f"{'UNCHANGED' if result.frozen_unchanged else 'CHANGED (a bug)'}. Evaluation: "
        f"{args.eval_steps} control steps, no randomisation, estimator latent.\n\n"
        f"{result_table(result)}"
    )
    (out / "adapt.md").write_text(md)
    print(md)
    print(f"moe-loco-analyze: wrote {out / 'adapted.onnx'}, adapt.md, adapt.json", file=sys.stderr)
    return 0 if result.frozen_unchanged else 1


def run_report(args: argparse.Namespace) -> int:
    from moe_loco_training.analysis.report import write_report

    if not args.policy.is_file():
        raise UsageError(f"{args.policy}: no such file")
    for c in args.checkpoint:
        if not c.is_file():
            raise UsageError(f"{c}: no such file")
    try:
        path = write_report(
            args.policy,
            _out_dir(args),
            args.checkpoint,
            args.trials,
            args.time_cap,
            args.jobs,
            args.gradient_iterations,
            args.adapt_iterations,
            args.adapt_envs,
            args.compose_duration,
            args.tracks,
            log=lambda m: print(m, file=sys.stderr, flush=True),
        )
    except RuntimeError as e:
        raise UsageError(str(e)) from None
    print(f"moe-loco-analyze: wrote {path}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``moe-loco-analyze``: see ``--help``."""
    args = _parser().parse_args(argv)
    run = {
        "gradients": run_gradients,
        "usage": run_usage,
        "tsne": run_tsne,
        "compose": run_compose,
        "adapt": run_adapt,
        "report": run_report,
    }[args.command]
    try:
        return run(args)
    except UsageError as e:
        print(f"moe-loco-analyze {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
