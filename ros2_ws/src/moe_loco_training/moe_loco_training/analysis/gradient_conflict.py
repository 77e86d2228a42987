"""Gradient conflict between tasks (paper Section IV-C, Tables III and IV).

What is measured. Each iteration the trainer collects one rollout with its own code
(:meth:`Trainer.collect`: PPO's action noise, PAS, GAE and advantage normalisation over the whole
rollout); before its PPO update, the gradient of the clipped surrogate L_surro
(:meth:`PPO.losses`, the rollout's own log-probabilities, so the ratio is 1 and the gradient is
the policy gradient -E[A grad log pi]) is taken over the robots of each task
(:meth:`RolloutStorage.batch` of those robots: a task is a fixed set of robots in the
environment). The parameters are the policy's, the ones L_surro reaches (:data:`POLICY_MODULES`:
the implicit encoder, which feeds the actor the true latent in the oracle stage, the actor LSTM,
the gate, the actor heads and the action std); the estimator (its output reaches the actor
detached) and the critic get no surrogate gradient and are left out. Then the update runs as in
training (or, ``frozen``, its effect is undone so every rollout is of the checkpoint's weights).

The metrics, for a pair of tasks with gradients g_i and g_j over those P parameter entries:

- cosine similarity g_i . g_j / (|g_i| |g_j|);
- negative-entry ratio: the fraction of the P entries where g_i and g_j have opposite signs
  (g_i[k] g_j[k] < 0; an entry that is zero in either counts as no conflict), i.e. the share of
  parameters that one task's step pushes one way and the other's the other way.

"We average the gradient throughout the process": the primary numbers are those of the per-task
gradients averaged over the iterations (Tables III and IV here); the means of the per-iteration
numbers are reported beside them. The diagonal, which the paper leaves empty, holds the same
metrics between two halves of one task's robots (alternate robots): the agreement that sampling
noise alone allows at this rollout size, the yardstick for every other entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from moe_loco_training.models import MoELocoActorCritic
from moe_loco_training.train.ppo import PPO
from moe_loco_training.train.runner import Trainer
from moe_loco_training.train.storage import RolloutStorage

POLICY_MODULES = ("implicit_encoder", "actor_rnn", "gate", "actor_heads", "action_std")
"""Top-level parts of the model whose parameters the surrogate loss reaches (see above)."""

PAPER_ROBOTS, PAPER_ITERATIONS, PAPER_STEPS = 4096, 500, 24
"""The paper's protocol: 4,096 robots for 500 iterations from a pretrained checkpoint (its
rollout length is rsl_rl's and this repository's 24 steps)."""


def policy_parameters(model: MoELocoActorCritic) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) of the model's policy side, in the model's order."""
    return [(n, p) for n, p in model.named_parameters() if n.split(".")[0] in POLICY_MODULES]


def surrogate_gradient(
    ppo: PPO, storage: RolloutStorage, robots: torch.Tensor, params: Sequence[nn.Parameter]
) -> torch.Tensor:
    """The flat float64 gradient of L_surro over the rollout of ``robots`` (zeros where unused)."""
    loss = ppo.losses(storage.batch(robots))["surrogate"]
    grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    return torch.cat(
        [
            (torch.zeros(p.numel()) if g is None else g.reshape(-1)).to(torch.float64)
            for g, p in zip(grads, params, strict=True)
        ]
    )


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> float:
    """a . b / (|a| |b|); NaN when either is zero."""
    na, nb = float(a.norm()), float(b.norm())
    if na == 0.0 or nb == 0.0:
        return float("nan")
    return float(a @ b) / (na * nb)


def negative_entry_ratio(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of the entries where ``a`` and ``b`` have opposite signs (a[k] b[k] < 0)."""
    if a.shape != b.shape or a.numel() == 0:
        raise ValueError(f"need two gradients of one shape, got {tuple(a.shape)}, {tuple(b.shape)}")
    return float(((a * b) < 0).to(torch.float64).mean())


def conflict_matrices(
    grads: Sequence[torch.Tensor], halves: Sequence[tuple[torch.Tensor, torch.Tensor] | None]
) -> tuple[np.ndarray, np.ndarray]:
    """(cosine, negative ratio), each (K, K) over K task gradients: symmetric, the diagonal from
    the two halves of each task (NaN where a task has no halves)."""
    k = len(grads)
    cos = np.full((k, k), np.nan)
    neg = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(i + 1, k):
            cos[i, j] = cos[j, i] = cosine_similarity(grads[i], grads[j])
            neg[i, j] = neg[j, i] = negative_entry_ratio(grads[i], grads[j])
        h = halves[i]
        if h is not None:
            cos[i, i] = cosine_similarity(*h)
            neg[i, i] = negative_entry_ratio(*h)
    return cos, neg


@dataclass
class TaskGradients:
    """One rollout's surrogate gradients: per task, and per half of each task's robots."""

    tasks: list[str]
    full: list[torch.Tensor]
    halves: list[tuple[torch.Tensor, torch.Tensor] | None]
    robots: list[int]


def per_task_gradients(trainer: Trainer) -> TaskGradients:
    """The surrogate gradient of each task of the rollout now in the trainer's storage.

    A task's gradient is the robots-weighted mean of its two halves' (the surrogate is a mean
    over steps and every robot has the same number of steps in a rollout), so only the halves
    are computed. Tasks without robots are left out.
    """
    env, storage = trainer.env, trainer.storage
    if env is None or storage is None:
        raise RuntimeError("the trainer has no rollout (call it from Trainer.train_iteration)")
    params = [p for _, p in policy_parameters(trainer.model)]
    out = TaskGradients([], [], [], [])
    for t, name in enumerate(env.task_names):
        robots = torch.nonzero(trainer.task_ids == t).flatten()
        n = len(robots)
        if n == 0:
            continue
        if n == 1:
            full, halves = surrogate_gradient(trainer.ppo, storage, robots, params), None
        else:
            a, b = robots[0::2], robots[1::2]
            ga = surrogate_gradient(trainer.ppo, storage, a, params)
            gb = surrogate_gradient(trainer.ppo, storage, b, params)
            full, halves = (len(a) * ga + len(b) * gb) / n, (ga, gb)
        out.tasks.append(name)
        out.full.append(full)
        out.halves.append(halves)
        out.robots.append(n)
    return out


@dataclass
class GradientConflict:
    """Tables III/IV for one checkpoint (matrices indexed like ``tasks``)."""

    checkpoint: str
    head: str
    """``moe`` or ``mlp`` (the "w/o MoE" baseline)."""
    tasks: list[str]
    robots: list[int]
    steps_per_env: int
    iterations: int
    start_iteration: int
    frozen: bool
    parameters: int
    cosine: np.ndarray
    """Of the iteration-averaged gradients (diagonal: split halves)."""
    negative: np.ndarray
    cosine_per_iteration: np.ndarray
    """Mean over the iterations of each iteration's cosine."""
    negative_per_iteration: np.ndarray
    gradient_norm: list[float] = field(default_factory=list)
    """|mean gradient| per task."""
    environment: str = ""
    """How the environment started (continued from the checkpoint's state, or reset)."""

    @property
    def label(self) -> str:
        return "MoE" if self.head == "moe" else "w/o MoE"

    @property
    def samples(self) -> int:
        return sum(self.robots) * self.steps_per_env * self.iterations

    def scale_note(self) -> str:
        """How this run maps to the paper's protocol."""
        paper = PAPER_ROBOTS * PAPER_STEPS * PAPER_ITERATIONS
        return (
            f"{sum(self.robots)} robots x {self.steps_per_env} steps x {self.iterations} "
            f"iterations = {self.samples:,} samples from iteration {self.start_iteration} "
            f"({'weights frozen' if self.frozen else 'training on'}), "
            f"{100 * self.samples / paper:.3g} % of the paper's {PAPER_ROBOTS:,} x {PAPER_STEPS}"
            f" x {PAPER_ITERATIONS} = {paper:,}"
        )


def measure_gradient_conflict(
    trainer: Trainer,
    iterations: int,
    checkpoint: str = "",
    frozen: bool = False,
    progress: Callable[[int, TaskGradients], None] | None = None,
) -> GradientConflict:
    """Run ``iterations`` training iterations of ``trainer``, taking every rollout's per-task
    gradients before its update; ``frozen`` restores the model and the optimiser after each
    update (the environment and the random generator go on: fresh rollouts of one policy)."""
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    start = trainer.iteration
    sums: list[torch.Tensor] = []
    half_sums: list[list[torch.Tensor] | None] = []
    cos_sum: np.ndarray | None = None
    neg_sum: np.ndarray | None = None
    first: TaskGradients | None = None

    def record() -> None:
        nonlocal cos_sum, neg_sum, first
        g = per_task_gradients(trainer)
        if first is None:
            first = g
            sums.extend(torch.zeros_like(x) for x in g.full)
            half_sums.extend(
                None if h is None else [torch.zeros_like(x) for x in h] for h in g.halves
            )
        elif g.tasks != first.tasks:
            raise RuntimeError(f"the tasks changed between rollouts: {first.tasks} -> {g.tasks}")
        for s, x in zip(sums, g.full, strict=True):
            s += x
        for hs, h in zip(half_sums, g.halves, strict=True):
            if hs is not None and h is not None:
                hs[0] += h[0]
                hs[1] += h[1]
        c, n = conflict_matrices(g.full, g.halves)
        cos_sum = c if cos_sum is None else cos_sum + c
        neg_sum = n if neg_sum is None else neg_sum + n
        if progress is not None:
            progress(trainer.iteration - start + 1, g)

    for _ in range(iterations):
        saved = None
        if frozen:
            saved = (
                {k: v.clone() for k, v in trainer.model.state_dict().items()},
                _clone(trainer.ppo.state_dict()),
            )
        trainer.train_iteration(after_collect=record)
        if saved is not None:
            trainer.model.load_state_dict(saved[0])
            trainer.ppo.load_state_dict(saved[1])
    assert first is not None and cos_sum is not None and neg_sum is not None
    means = [s / iterations for s in sums]
    mean_halves = [None if h is None else (h[0] / iterations, h[1] / iterations) for h in half_sums]
    cos, neg = conflict_matrices(means, mean_halves)
    assert trainer.storage is not None
    return GradientConflict(
        checkpoint=checkpoint,
        head=trainer.model.config.head,
        tasks=list(first.tasks),
        robots=list(first.robots),
        steps_per_env=trainer.storage.num_steps,
        iterations=iterations,
        start_iteration=start,
        frozen=frozen,
        parameters=sum(p.numel() for _, p in policy_parameters(trainer.model)),
        cosine=cos,
        negative=neg,
        cosine_per_iteration=cos_sum / iterations,
        negative_per_iteration=neg_sum / iterations,
        gradient_norm=[float(m.norm()) for m in means],
    )


def _clone(obj: object) -> object:
    """A deep copy of a state dict's tensors (optimiser state nests dicts and lists)."""
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clone(v) for v in obj]
    return obj
