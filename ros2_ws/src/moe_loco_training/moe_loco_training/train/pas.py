"""Probability Annealing Selection (Algorithm 2, after SARO [54]).

At stage-2 step t the actor is fed the true privileged latent [Enc(i_t), e_t] with probability
P_t = alpha^t and the estimator's output otherwise, drawn independently per robot and step; t
counts every control step of the PAS stages. Below ``floor`` the probability is 0, so the policy
ends on the estimate alone, as it runs on the robot.
"""

from __future__ import annotations

import math

import torch


class ProbabilityAnnealing:
    """The schedule P_t = alpha^t (0 once below ``floor``) and its per-robot selection."""

    def __init__(self, alpha: float, floor: float) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.floor = floor
        self.steps = 0
        """t: PAS control steps taken so far (part of the training state: resume restores it)."""

    def probability(self, t: int | None = None) -> float:
        """P_t (of the current step when ``t`` is None)."""
        t = self.steps if t is None else t
        p = math.exp(t * math.log(self.alpha)) if self.alpha < 1 else 1.0
        return 0.0 if p < self.floor else p

    def select(self, num_envs: int, generator: torch.Generator) -> torch.Tensor:
        """(num_envs,) bool: True = this robot's actor gets the true latent at this step; then
        t <- t + 1."""
        p = self.probability()
        self.steps += 1
        if p >= 1.0:
            return torch.ones(num_envs, dtype=torch.bool, device=generator.device)
        return torch.rand(num_envs, generator=generator, device=generator.device) < p

    def state_dict(self) -> dict:
        return {"alpha": self.alpha, "floor": self.floor, "steps": self.steps}

    def load_state_dict(self, d: dict) -> None:
        self.alpha, self.floor, self.steps = float(d["alpha"]), float(d["floor"]), int(d["steps"])
