"""Gate weights of a policy file along benchmark trials: the data of Figs. 7 and 8.

Each trial is the benchmark's (:func:`~moe_loco_training.benchmark.runner.run_trial_traced`):
the policy file in the controller core, in lockstep with the simulated Go2, on one of the 30 m
single-task tracks, with the benchmark's operator. Every control step in RUN mode is one sample:
the gate weights the core applied (the status topic's ``gate``: softmax(g(h_t)) times the
expert scale w of eq. (5)), the track it ran on (its task) and the gait the core ran.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moe_loco_controller.core.controller import Mode
from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_training.benchmark.runner import (
    COLUMNS,
    EXTRA_COLUMNS,
    BenchmarkConfig,
    map_trials,
    run_trial_traced,
)

SINGLE_TASK_TRACKS: tuple[str, ...] = tuple(
    t for t, _ in (*COLUMNS, *EXTRA_COLUMNS) if t != "mixed"
)
"""The tracks whose every step belongs to one task (the mixed runway's do not)."""
GAITS = ("quadrupedal", "bipedal")


class GateSampleError(ValueError):
    """A policy, track or expert scale the analysis cannot use; the message names it."""


@dataclass
class GateSamples:
    """One row per RUN control step of every trial."""

    policy: str
    gate: np.ndarray
    """(n, num_experts) applied gate weights."""
    task: np.ndarray
    """(n,) the track (task) of each step."""
    gait: np.ndarray
    """(n,) 0 quadrupedal, 1 bipedal (the core's gait at that step)."""
    expert_labels: list[str]
    expert_scale: np.ndarray

    def __len__(self) -> int:
        return len(self.task)

    @property
    def tasks(self) -> list[str]:
        """The tasks in the order they were run."""
        return list(dict.fromkeys(self.task.tolist()))

    def save(self, path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        np.savez_compressed(
            p,
            policy=np.array(self.policy),
            gate=self.gate,
            task=self.task.astype(str),
            gait=self.gait,
            expert_labels=np.array(self.expert_labels, dtype=str),
            expert_scale=self.expert_scale,
        )
        return p

    @staticmethod
    def load(path: str | os.PathLike[str]) -> GateSamples:
        """Samples written by :meth:`save` (``moe-loco-analyze usage`` writes gate_samples.npz)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                return GateSamples(
                    policy=str(z["policy"]),
                    gate=z["gate"],
                    task=z["task"],
                    gait=z["gait"],
                    expert_labels=[str(s) for s in z["expert_labels"]],
                    expert_scale=z["expert_scale"],
                )
        except (OSError, ValueError, KeyError) as e:
            raise GateSampleError(f"{path}: not a gate-samples file ({e})") from None


def open_policy(
    policy: str | os.PathLike[str],
    expert_scale: Sequence[float] | None = None,
    preset: str | None = None,
) -> tuple[PolicyRuntime, np.ndarray]:
    """The policy's runtime and the expert scale to run it with (checked by the runtime's own
    rules; ``preset``: a name from the controller's expert_presets.yaml)."""
    try:
        runtime = PolicyRuntime(policy)
    except ValueError as e:  # PolicyFileError names the file and the field
        raise GateSampleError(f"{policy}: not a usable policy file: {e}") from None
    try:
        if preset is not None:
            runtime.set_expert_preset(preset)
        if expert_scale is not None:
            runtime.set_expert_scale(expert_scale)
    except ValueError as e:
        raise GateSampleError(f"expert scale refused: {e}") from None
    return runtime, np.asarray(runtime.expert_scale, dtype=np.float64).copy()


def _trial_gates(
    job: tuple[str, str, int, BenchmarkConfig, tuple[float, ...]],
) -> tuple[str, np.ndarray, np.ndarray]:
    policy, track, trial, config, scale = job
    _, trace = run_trial_traced(policy, track, trial, config, expert_scale=scale)
    run = trace.mode == int(Mode.RUN)
    return track, trace.gate[run], trace.gait[run]


def collect_gate_samples(
    policy: str | os.PathLike[str],
    config: BenchmarkConfig,
    expert_scale: Sequence[float] | None = None,
    preset: str | None = None,
) -> GateSamples:
    """Run ``config.trials`` benchmark trials on each of ``config.tracks`` (single-task tracks
    only) and gather the gate weights of their RUN steps."""
    bad = [t for t in config.tracks if t not in SINGLE_TASK_TRACKS]
    if bad:
        raise GateSampleError(
            f"track {bad[0]!r} is not a single-task track (known: {', '.join(SINGLE_TASK_TRACKS)})"
        )
    runtime, scale = open_policy(policy, expert_scale, preset)
    meta = runtime.metadata
    labels = list(meta.expert_labels or [f"expert {i}" for i in range(meta.num_experts)])
    jobs = [
        (str(policy), track, k, config, tuple(scale.tolist()))
        for track in config.tracks
        for k in range(config.trials)
    ]
    rows = map_trials(_trial_gates, jobs, config.jobs)
    e = meta.num_experts
    gates = [g.reshape(-1, e) for _, g, _ in rows]
    return GateSamples(
        policy=str(policy),
        gate=np.concatenate(gates) if gates else np.zeros((0, e)),
        task=np.concatenate([np.full(len(g), t) for (t, _, _), g in zip(rows, gates, strict=True)]),
        gait=np.concatenate([np.asarray(gait, dtype=np.int64) for _, _, gait in rows]),
        expert_labels=labels,
        expert_scale=scale,
    )
