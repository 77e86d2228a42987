"""Tables III and IV as Markdown and CSV, checkpoints side by side ("MoE/w/o MoE" cells)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from moe_loco_training.analysis.gradient_conflict import GradientConflict
from moe_loco_training.benchmark.runner import COLUMNS, EXTRA_COLUMNS

TASK_LABELS = {**dict(COLUMNS), **dict(EXTRA_COLUMNS)}
"""The paper's column names of the tasks that have one (bar_q: "Bar (q)")."""


def task_label(task: str) -> str:
    return TASK_LABELS.get(task, task)


def unique_labels(results: Sequence[GradientConflict]) -> list[str]:
    """ "MoE", "w/o MoE", with the checkpoint's file name where two would read the same."""
    labels = [r.label for r in results]
    return [
        f"{lab} ({Path(r.checkpoint).name})" if labels.count(lab) > 1 else lab
        for lab, r in zip(labels, results, strict=True)
    ]


def all_tasks(results: Sequence[GradientConflict]) -> list[str]:
    """The tasks of every result, in order of first appearance."""
    return list(dict.fromkeys(t for r in results for t in r.tasks))


def _value(r: GradientConflict, m: np.ndarray, a: str, b: str) -> float | None:
    if a not in r.tasks or b not in r.tasks:
        return None
    v = float(m[r.tasks.index(a), r.tasks.index(b)])
    return None if math.isnan(v) else v


def markdown_table(
    results: Sequence[GradientConflict],
    matrix: Callable[[GradientConflict], np.ndarray],
    title: str,
    fmt: Callable[[float], str],
) -> str:
    """One table shaped like the paper's: the upper triangle, the diagonal (split halves), each
    cell the checkpoints' values joined by "/" in their order ("n/a": not measured)."""
    tasks = all_tasks(results)
    corner = "/".join(unique_labels(results))
    lines = [
        title,
        "",
        "| " + " | ".join([corner, *(task_label(t) for t in tasks)]) + " |",
        "|" + "---|" * (len(tasks) + 1),
    ]
    for i, a in enumerate(tasks):
        cells = []
        for j, b in enumerate(tasks):
            if j < i:
                cells.append("-")
                continue
            vals = [_value(r, matrix(r), a, b) for r in results]
            cells.append("/".join("n/a" if v is None else fmt(v) for v in vals))
        lines.append("| " + " | ".join([task_label(a), *cells]) + " |")
    return "\n".join(lines)


def markdown_report(results: Sequence[GradientConflict]) -> str:
    """Both tables (of the iteration-averaged gradients and of the per-iteration means) with the
    settings of each checkpoint's measurement."""
    labels = unique_labels(results)
    parts = ["# Gradient conflict between tasks (paper Tables III and IV)", ""]
    for lab, r in zip(labels, results, strict=True):
        robots = ", ".join(f"{t} {n}" for t, n in zip(r.tasks, r.robots, strict=True))
        norms = ", ".join(f"{t} {g:.3g}" for t, g in zip(r.tasks, r.gradient_norm, strict=True))
        parts.append(
            f"- **{lab}**: `{r.checkpoint}`, {r.parameters:,} policy parameters; robots per task:"
            f" {robots}; {r.scale_note()}; |mean gradient|: {norms}"
            + (f"; {r.environment}" if r.environment else "")
        )
    parts += [
        "",
        "Per-task gradients of the PPO surrogate over the policy's parameters, taken before each "
        "update from the trainer's own rollouts. Diagonal: between two halves of one task's "
        "robots (the agreement sampling noise allows at this size); the paper leaves it empty.",
        "",
    ]
    if all(len(r.tasks) < 2 for r in results):
        parts += ["One task per checkpoint: no pair of tasks to compare, only the diagonal.", ""]
    cos = "{:.3f}".format

    def pct(v: float) -> str:
        return f"{100 * v:.2f}"

    parts.append(
        markdown_table(
            results,
            lambda r: r.cosine,
            "**Table III: cosine similarity of the iteration-averaged gradients** (higher: "
            "less conflict)",
            cos,
        )
    )
    parts.append("")
    parts.append(
        markdown_table(
            results,
            lambda r: r.negative,
            "**Table IV: negative entries (%) of the iteration-averaged gradients**, the share "
            "of parameters whose gradient signs differ (lower: less conflict)",
            pct,
        )
    )
    parts.append("")
    parts.append(
        markdown_table(
            results,
            lambda r: r.cosine_per_iteration,
            "Cosine similarity, mean of the per-iteration values",
            cos,
        )
    )
    parts.append("")
    parts.append(
        markdown_table(
            results,
            lambda r: r.negative_per_iteration,
            "Negative entries (%), mean of the per-iteration values",
            pct,
        )
    )
    return "\n".join(parts) + "\n"


CSV_FIELDS = ("model", "checkpoint", "metric", "averaging", "task_a", "task_b", "value")


def csv_report(results: Sequence[GradientConflict]) -> str:
    """One row per checkpoint, metric, averaging and pair (a <= b, the diagonal: split halves);
    ``negative_ratio`` as a fraction."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for lab, r in zip(unique_labels(results), results, strict=True):
        for metric, averaging, m in (
            ("cosine", "mean_gradient", r.cosine),
            ("negative_ratio", "mean_gradient", r.negative),
            ("cosine", "per_iteration", r.cosine_per_iteration),
            ("negative_ratio", "per_iteration", r.negative_per_iteration),
        ):
            for i, a in enumerate(r.tasks):
                for j in range(i, len(r.tasks)):
                    v = float(m[i, j])
                    w.writerow(
                        [lab, r.checkpoint, metric, averaging, a, r.tasks[j],
                         "" if math.isnan(v) else f"{v:.6f}"]
                    )  # fmt: skip
    return buf.getvalue()
