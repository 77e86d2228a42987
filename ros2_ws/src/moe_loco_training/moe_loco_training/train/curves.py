"""Training curves as a PNG, from a run's TensorBoard logs (for a policy card).

    python -m moe_loco_training.train.curves runs/<run> -o policies/<name>_curves.png

Panels: mean reward per step, mean episode length, the quadrupedal (or bipedal) tracking reward
terms, the curriculum level per task, the gate's entropy and expert usage per task, and the PPO
statistics (learning rate, KL, action std). A panel whose tags the run never logged is left out;
a run without any of them is an error naming the directory.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

PANELS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("mean reward per step", ("train/mean_reward_per_step",), ""),
    ("mean episode length [s]", ("train/mean_episode_length_s",), ""),
    (
        "velocity tracking terms",
        (
            "reward/quadrupedal/tracking_lin_vel",
            "reward/quadrupedal/tracking_ang_vel",
            "reward/bipedal/tracking_lin_vel",
            "reward/bipedal/tracking_ang_vel",
        ),
        "",
    ),
    ("curriculum level", (), "curriculum/"),
    ("gate entropy per task", (), "gate/*/gate_entropy"),
    ("PPO", ("loss/learning_rate", "loss/kl", "train/action_std"), ""),
)
"""(title, exact tags, tag prefix or ``gate/*/suffix`` pattern)."""


class CurvesError(Exception):
    """The run has no usable TensorBoard scalars."""


def read_scalars(run: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """tag -> (steps, values) of every scalar in ``run`` (a run dir or its ``tb/``)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    p = Path(run)
    tb = p / "tb" if (p / "tb").is_dir() else p
    if not tb.is_dir() or not any(tb.glob("events.out.tfevents.*")):
        raise CurvesError(f"{p}: no TensorBoard event file (expected {tb}/events.out.tfevents.*)")
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags().get("scalars", []):
        events = acc.Scalars(tag)
        out[tag] = (
            np.array([e.step for e in events], dtype=np.int64),
            np.array([e.value for e in events], dtype=np.float64),
        )
    if not out:
        raise CurvesError(f"{p}: the event files hold no scalars")
    return out


def read_lineage(runs: Sequence[str | Path]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The scalars of a campaign resumed in several run directories, oldest first: each later
    run replaces every earlier run's steps from its own first step on (a resume from an earlier
    checkpoint discards what came after it)."""
    if not runs:
        raise CurvesError("no run given")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for run in runs:
        scalars = read_scalars(run)
        first = min(int(steps[0]) for steps, _ in scalars.values() if len(steps))
        for tag in set(out) | set(scalars):
            old_s, old_v = out.get(tag, (np.zeros(0, np.int64), np.zeros(0)))
            new_s, new_v = scalars.get(tag, (np.zeros(0, np.int64), np.zeros(0)))
            keep = old_s < first
            out[tag] = (np.concatenate([old_s[keep], new_s]), np.concatenate([old_v[keep], new_v]))
    return out


def _panel_tags(scalars: dict, tags: tuple[str, ...], pattern: str) -> list[str]:
    found = [t for t in tags if t in scalars]
    if pattern.startswith("gate/*/"):
        suffix = pattern.split("*", 1)[1]
        found += sorted(t for t in scalars if t.startswith("gate/") and t.endswith(suffix))
    elif pattern:
        found += sorted(t for t in scalars if t.startswith(pattern))
    return found


def plot_curves(run: str | Path | Sequence[str | Path], out: str | Path, title: str = "") -> Path:
    """Write the curves of ``run`` (or of a lineage of runs, :func:`read_lineage`) to ``out``
    (PNG); returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [run] if isinstance(run, (str, Path)) else list(run)
    scalars = read_lineage(runs)
    run = runs[-1]
    panels = [(t, _panel_tags(scalars, tags, pat)) for t, tags, pat in PANELS]
    panels = [(t, tags) for t, tags in panels if tags]
    if not panels:
        raise CurvesError(f"{run}: none of the plotted tags were logged ({sorted(scalars)[:5]})")
    cols = 2
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3.0 * rows), squeeze=False)
    for ax, (name, tags) in zip(axes.flat, panels, strict=False):
        for tag in tags:
            steps, values = scalars[tag]
            ax.plot(steps, values, label=tag.split("/", 1)[-1], linewidth=1.2)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("iteration", fontsize=8)
        ax.tick_params(labelsize=8)
        if name == "PPO":
            ax.set_yscale("log")
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title or f"training curves: {Path(run).name}")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="moe-loco-curves", description=__doc__.split("\n")[0])
    p.add_argument(
        "run",
        type=Path,
        nargs="+",
        help="a run directory (runs/<run>) or its tb/ folder; several: a campaign's resumed "
        "runs, oldest first (a later run replaces the earlier ones' steps from its first on)",
    )
    p.add_argument("-o", "--output", type=Path, help="PNG (default: <last run>/curves.png)")
    p.add_argument("--title", default="")
    a = p.parse_args(argv)
    try:
        out = plot_curves(a.run, a.output or a.run[-1] / "curves.png", a.title)
    except CurvesError as e:
        print(f"moe-loco-curves: {e}", file=sys.stderr)
        return 2
    print(f"moe-loco-curves: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
