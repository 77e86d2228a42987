"""Expert usage per task (paper Fig. 7): the mean applied gate weight of each expert."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moe_loco_training.analysis.gate_samples import GateSamples


@dataclass(frozen=True)
class TaskUsage:
    task: str
    samples: int
    bipedal_share: float
    """Fraction of the task's samples run in the bipedal gait."""
    mean_gate: np.ndarray
    """(num_experts,) mean applied gate weight per expert."""


def expert_usage(samples: GateSamples) -> list[TaskUsage]:
    """One :class:`TaskUsage` per task with samples, in run order."""
    out = []
    for task in samples.tasks:
        sel = samples.task == task
        out.append(
            TaskUsage(
                task=task,
                samples=int(sel.sum()),
                bipedal_share=float((samples.gait[sel] == 1).mean()),
                mean_gate=samples.gate[sel].mean(axis=0),
            )
        )
    return out


def usage_csv(usage: list[TaskUsage], labels: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["task", "samples", "bipedal_share", *labels])
    for u in usage:
        w.writerow(
            [u.task, u.samples, f"{u.bipedal_share:.4f}", *(f"{v:.6f}" for v in u.mean_gate)]
        )
    return buf.getvalue()


def usage_table(usage: list[TaskUsage], labels: list[str]) -> str:
    """A Markdown table: one row per task, one column per expert."""
    lines = [
        "| task | samples | " + " | ".join(labels) + " |",
        "|---|---:|" + "---:|" * len(labels),
    ]
    for u in usage:
        cells = " | ".join(f"{v:.3f}" for v in u.mean_gate)
        lines.append(f"| {u.task} | {u.samples} | {cells} |")
    return "\n".join(lines)


def plot_usage(
    usage: list[TaskUsage], labels: list[str], path: str | os.PathLike[str], title: str
) -> Path:
    """Fig. 7's layout: one panel per task, one bar per expert, a shared y axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not usage:
        raise ValueError("no samples: the policy never ran (RUN mode) in any trial")
    n = len(usage)
    cols = min(n, 5)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.6 * rows), squeeze=False)
    top = max(float(u.mean_gate.max()) for u in usage)
    colors = plt.get_cmap("tab10")(np.arange(len(labels)) % 10)
    x = np.arange(len(labels))
    for ax, u in zip(axes.flat, usage, strict=False):
        ax.bar(x, u.mean_gate, color=colors)
        ax.set_title(f"{u.task} ({u.samples} steps)", fontsize=9)
        ax.set_xticks(x, [str(i) for i in range(len(labels))], fontsize=8)
        ax.set_ylim(0.0, max(top * 1.1, 1e-3))
        ax.set_xlabel("expert", fontsize=8)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("mean gate weight", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p
