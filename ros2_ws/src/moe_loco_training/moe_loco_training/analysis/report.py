"""``moe-loco-analyze report``: every analysis of one policy into one folder, by one command.

It runs the other subcommands in this process, each into a subfolder of ``--out``, and writes
``README.md`` there: expert usage per task (Fig. 7), the t-SNE of the gate (Fig. 8, from the
same samples), skill composition (Fig. 9) with the presets file's ``dribble`` and with a
dribble-like scale chosen from this policy's own usage (its two most used experts on the
quadrupedal plane, the second doubled, the rest masked: the paper's recipe, with experts that this
policy actually uses), the gradient-conflict tables (Tables III/IV) of the training checkpoints
given (MoE and w/o-MoE side by side when both are), and the adaptation experiment (Fig. 10) when
``--adapt-iterations`` > 0 and a checkpoint is given. What was not run is said in the report.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def _run(main: Callable[[list[str]], int], argv: list[str]) -> tuple[int, str]:
    """A subcommand in this process: its exit code and what it printed on stdout."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(argv)
    return rc, buf.getvalue()


def dribble_like_scale(usage_rows: list, num_experts: int, task: str = "plane_q") -> list[float]:
    """The paper's dribbling recipe on this policy: its two most used experts on ``task``, the
    second doubled, the others masked."""
    row = next((u for u in usage_rows if u.task == task), None)
    if row is None:
        raise ValueError(f"no usage samples on {task}")
    first, second = (int(i) for i in np.argsort(-row.mean_gate)[:2])
    w = [0.0] * num_experts
    w[first], w[second] = 1.0, 2.0
    return w


def write_report(
    policy: Path,
    out: Path,
    checkpoints: Sequence[Path] = (),
    trials: int = 1,
    time_cap: float = 20.0,
    jobs: int = 0,
    gradient_iterations: int = 20,
    adapt_iterations: int = 0,
    adapt_envs: int = 256,
    compose_duration: float = 10.0,
    tracks: str | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Run the analyses and write ``out/README.md``; returns its path."""
    from moe_loco_training.analysis.cli import main
    from moe_loco_training.analysis.expert_usage import expert_usage, usage_table
    from moe_loco_training.analysis.gate_samples import GateSamples

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    sections: list[str] = []
    notes: list[str] = []
    rollout = ["--trials", str(trials), "--time-cap", str(time_cap), "--jobs", str(jobs)]
    if tracks:
        rollout += ["--tracks", tracks]

    log("report: expert usage (Fig. 7)")
    rc, _ = _run(main, ["usage", str(policy), *rollout, "--out", str(out / "usage")])
    if rc != 0:
        raise RuntimeError(f"usage failed (exit {rc})")
    samples = GateSamples.load(out / "usage" / "gate_samples.npz")
    usage = expert_usage(samples)
    sections.append(
        "## Expert usage per task (Fig. 7)\n\n"
        f"Mean applied gate weight per expert along the benchmark's single-task tracks ({trials} "
        f"trial(s) each, at most {time_cap:g} s of RUN; {len(samples)} control steps).\n\n"
        f"![usage](usage/usage.png)\n\n{usage_table(usage, samples.expert_labels)}"
    )

    log("report: t-SNE of the gate (Fig. 8)")
    rc, text = _run(
        main, ["tsne", str(out / "usage" / "gate_samples.npz"), "--out", str(out / "tsne")]
    )
    if rc == 0:
        sections.append(
            f"## t-SNE of the gate outputs (Fig. 8)\n\n![tsne](tsne/tsne.png)\n\n{text}"
        )
    else:
        notes.append(f"t-SNE not drawn (exit {rc}: too few samples?)")

    log("report: skill composition (Fig. 9)")
    n = samples.gate.shape[1]
    compose = ["--duration", str(compose_duration)]
    parts = ["## Skill composition (Fig. 9)\n"]
    for name, extra in (
        ("dribble (presets file)", ["--preset", "dribble"]),
        ("dribble-like (this policy's experts)", None),
    ):
        if extra is None:
            try:
                w = dribble_like_scale(usage, n)
            except ValueError as e:
                notes.append(f"dribble-like composition skipped: {e}")
                continue
            extra = ["--expert-scale", ",".join(f"{x:g}" for x in w)]
        sub = out / ("compose_preset" if "presets" in name else "compose_own")
        rc, _ = _run(main, ["compose", str(policy), *extra, "--via-service", *compose,
                            "--out", str(sub)])  # fmt: skip
        if rc == 0:
            md = (sub / "compose.md").read_text().split("\n", 2)[2]
            parts.append(f"### {name}\n\n![compose]({sub.name}/compose.png)\n\n{md}")
        else:
            notes.append(f"composition {name} failed (exit {rc})")
    sections.append("\n".join(parts))

    if checkpoints:
        log("report: gradient conflict (Tables III/IV)")
        rc, text = _run(
            main,
            ["gradients", *map(str, checkpoints), "--iterations", str(gradient_iterations),
             "--out", str(out / "gradients")],
        )  # fmt: skip
        if rc == 0:
            sections.append("## Gradient conflict (Tables III/IV)\n\n" + text)
        else:
            notes.append(f"gradients failed (exit {rc})")
        heads = {_head(c) for c in checkpoints}
        if heads != {"moe", "mlp"}:
            notes.append(
                "MoE vs w/o-MoE gradient tables: only "
                + ", ".join(sorted(heads))
                + " checkpoint(s) given; the w/o-MoE baseline of the same schedule does not "
                "exist yet (issue 13)"
            )
    else:
        notes.append("gradient conflict not measured: no training checkpoint given")

    if adapt_iterations > 0 and checkpoints:
        log("report: adaptation with a new expert (Fig. 10)")
        rc, _ = _run(
            main,
            ["adapt", str(checkpoints[0]), "--iterations", str(adapt_iterations), "--num-envs",
             str(adapt_envs), "--out", str(out / "adapt")],
        )  # fmt: skip
        if rc == 0:
            md = (out / "adapt" / "adapt.md").read_text().split("\n", 2)[2]
            sections.append(
                f"## Adaptation with a new expert (Fig. 10)\n\n![curves](adapt/adapt_curves.png)"
                f"\n\n{md}"
            )
        else:
            notes.append(f"adaptation failed (exit {rc})")
    else:
        notes.append("adaptation not run (--adapt-iterations 0 or no checkpoint)")

    command = (
        f"moe-loco-analyze report {policy} "
        + "".join(f"--checkpoint {c} " for c in checkpoints)
        + f"--trials {trials} --time-cap {time_cap:g} --adapt-iterations {adapt_iterations} "
        f"--out {out}"
    )
    head = (
        f"# Analysis of `{policy.name}`\n\n"
        f"Regenerate with `{command}` ({(time.monotonic() - t0) / 60:.1f} min on the machine "
        f"that wrote it). Policy metadata: {json.dumps(_meta(policy))}\n"
    )
    if notes:
        head += "\n**Not run / not available:** " + "; ".join(notes) + ".\n"
    path = out / "README.md"
    path.write_text(head + "\n" + "\n\n".join(sections) + "\n")
    return path


def _head(checkpoint: Path) -> str:
    import torch

    data = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    return str((data.get("model_config") or {}).get("head", "moe"))


def _meta(policy: Path) -> dict:
    from moe_loco_controller.core.policy import PolicyRuntime

    m = PolicyRuntime(policy, device="cpu").metadata
    training = dict(m.training or {})
    keep = ("stage", "code_revision", "samples", "iterations")
    return {
        "experts": m.num_experts,
        "gaits": list(m.gaits),
        **{k: training[k] for k in keep if k in training},
    }
