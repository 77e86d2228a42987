"""A 2-D t-SNE of the gate outputs, coloured by task, marked by gait (paper Fig. 8).

The embedding is scikit-learn's :class:`sklearn.manifold.TSNE` (Barnes-Hut, PCA start, seeded).
Long runs give tens of thousands of steps; at most ``max_points`` are embedded, the same share of
each task, evenly spaced in time (2,000 points take about 25 s on this 2-core machine).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moe_loco_training.analysis.gate_samples import GAITS, GateSamples

MIN_POINTS = 5


@dataclass
class GateEmbedding:
    xy: np.ndarray
    """(n, 2) the embedding."""
    task: np.ndarray
    gait: np.ndarray
    index: np.ndarray
    """(n,) the rows of the samples that were embedded."""
    perplexity: float


def subsample(samples: GateSamples, max_points: int) -> np.ndarray:
    """Row indices: at most ``max_points`` in all, split evenly over the tasks, evenly spaced."""
    tasks = samples.tasks
    if not tasks:
        return np.zeros(0, dtype=np.int64)
    per_task = max(1, max_points // len(tasks))
    picks = []
    for t in tasks:
        rows = np.flatnonzero(samples.task == t)
        if len(rows) > per_task:
            rows = rows[np.linspace(0, len(rows) - 1, per_task).round().astype(np.int64)]
        picks.append(rows)
    return np.concatenate(picks)


def embed_gates(
    samples: GateSamples, max_points: int = 2000, seed: int = 0, perplexity: float = 30.0
) -> GateEmbedding:
    """t-SNE of (a subsample of) the gate weights; the perplexity is lowered for few points."""
    from sklearn.manifold import TSNE

    idx = subsample(samples, max_points)
    n = len(idx)
    if n < MIN_POINTS:
        raise ValueError(f"{n} gate samples: t-SNE needs at least {MIN_POINTS}")
    perp = float(min(perplexity, max(1.0, (n - 1) / 3.0)))
    xy = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed).fit_transform(
        samples.gate[idx].astype(np.float64)
    )
    return GateEmbedding(xy, samples.task[idx], samples.gait[idx], idx, perp)


def embedding_csv(e: GateEmbedding) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["x", "y", "task", "gait", "sample"])
    for (x, y), t, g, i in zip(e.xy, e.task, e.gait, e.index, strict=True):
        w.writerow([f"{x:.5f}", f"{y:.5f}", t, GAITS[int(g)], int(i)])
    return buf.getvalue()


def plot_embedding(e: GateEmbedding, path: str | os.PathLike[str], title: str) -> Path:
    """Scatter: one colour per task, circles quadrupedal, triangles bipedal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(e.task.tolist()))
    cmap = plt.get_cmap("tab10" if len(tasks) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(7.0, 5.5))
    for k, t in enumerate(tasks):
        for g, marker in ((0, "o"), (1, "^")):
            sel = (e.task == t) & (e.gait == g)
            if sel.any():
                ax.scatter(
                    e.xy[sel, 0], e.xy[sel, 1], s=8, marker=marker, color=cmap(k % cmap.N),
                    label=f"{t} ({GAITS[g][0]})", alpha=0.7, linewidths=0,
                )  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, markerscale=2, loc="best", frameon=False)
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p
