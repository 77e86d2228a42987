"""The rollout buffer of recurrent PPO and its sequence minibatches.

One rollout is ``T`` control steps of ``N`` robots, time-major (T, N, ...). The recurrent state is
stored once, at the start of the rollout: within it a robot's state is zeroed whenever its episode
ends, so every later trajectory starts from zeros. A minibatch is the whole rollouts of a subset
of the robots, cut at episode ends into trajectories, padded to the longest (L, K, ...), with a
validity mask and each trajectory's initial state (the stored one for a robot's first trajectory,
zeros otherwise), so the update replays exactly the sequences the rollout ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence

from moe_loco_training.models import RecurrentState

STEP_FIELDS = {
    "proprio": "proprio_dim",
    "command": "command_dim",
    "explicit": "explicit_dim",
    "implicit": "implicit_dim",
    "actions": "num_actions",
    "mu": "num_actions",
    "sigma": "num_actions",
}
SCALAR_FIELDS = ("use_privileged", "log_prob", "values", "rewards", "dones")


def split_and_pad(x: torch.Tensor, dones: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut each robot's (T, N, ...) series after every done, pad: (L, K, ...) and mask (L, K).

    Trajectories come robot by robot, in time order within a robot.
    """
    t, n = dones.shape
    ends = dones.clone().bool()
    ends[-1] = True
    flat_ends = ends.transpose(0, 1).reshape(-1)
    idx = torch.cat([torch.tensor([-1], device=x.device), torch.nonzero(flat_ends).flatten()])
    lengths = (idx[1:] - idx[:-1]).tolist()
    flat = x.transpose(0, 1).reshape(n * t, *x.shape[2:])
    trajs = torch.split(flat, lengths)
    padded = pad_sequence(trajs)
    steps = torch.arange(padded.shape[0], device=x.device).unsqueeze(1)
    mask = steps < torch.tensor(lengths, device=x.device).unsqueeze(0)
    return padded, mask


def first_trajectory(dones: torch.Tensor) -> torch.Tensor:
    """(K,) bool: which padded trajectory is its robot's first of the rollout."""
    ends = dones.clone().bool()
    ends[-1] = True
    counts = ends.sum(0)  # trajectories per robot
    first = torch.zeros(int(counts.sum()), dtype=torch.bool, device=dones.device)
    starts = torch.cumsum(counts, 0) - counts
    first[starts] = True
    return first


def unpad(padded: torch.Tensor, mask: torch.Tensor, t: int, n: int) -> torch.Tensor:
    """Inverse of :func:`split_and_pad` for the valid entries: back to (T, N, ...)."""
    flat = padded.transpose(0, 1)[mask.transpose(0, 1)]
    return flat.reshape(n, t, *padded.shape[2:]).transpose(0, 1)


@dataclass
class SequenceBatch:
    """Padded trajectories (L, K, ...) of one minibatch; ``mask`` (L, K) marks real steps."""

    proprio: torch.Tensor
    command: torch.Tensor
    explicit: torch.Tensor
    implicit: torch.Tensor
    use_privileged: torch.Tensor
    actions: torch.Tensor
    log_prob: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor
    values: torch.Tensor
    returns: torch.Tensor
    advantages: torch.Tensor
    mask: torch.Tensor
    state: RecurrentState
    """Initial recurrent state of each trajectory, (1, K, hidden) per tensor."""
    envs: torch.Tensor
    """The robots of this minibatch (indices into N)."""


class RolloutStorage:
    """T steps x N robots of observations, actions, rewards and the initial recurrent state."""

    def __init__(
        self,
        num_steps: int,
        num_envs: int,
        dims: dict[str, int],
        device: torch.device | str = "cpu",
    ) -> None:
        self.num_steps, self.num_envs = num_steps, num_envs
        self.device = torch.device(device)
        z = {"device": self.device}
        self.data: dict[str, torch.Tensor] = {
            name: torch.zeros(num_steps, num_envs, dims[d], **z) for name, d in STEP_FIELDS.items()
        }
        for name in SCALAR_FIELDS:
            dtype = torch.bool if name in ("use_privileged", "dones") else torch.float32
            self.data[name] = torch.zeros(num_steps, num_envs, dtype=dtype, **z)
        self.data["returns"] = torch.zeros(num_steps, num_envs, **z)
        self.data["advantages"] = torch.zeros(num_steps, num_envs, **z)
        self.initial_state: RecurrentState | None = None
        self.step = 0

    def clear(self) -> None:
        self.step = 0
        self.initial_state = None

    def add(self, **values: torch.Tensor) -> None:
        """Store one step; the keys are the field names (see ``STEP_FIELDS``/``SCALAR_FIELDS``)."""
        if self.step >= self.num_steps:
            raise RuntimeError("rollout storage is full")
        for k, v in values.items():
            self.data[k][self.step] = v
        self.step += 1

    def set_rewards(self, rewards: torch.Tensor, dones: torch.Tensor) -> None:
        """Rewards and dones of the step stored last."""
        self.data["rewards"][self.step - 1] = rewards
        self.data["dones"][self.step - 1] = dones

    def compute_returns(
        self, last_values: torch.Tensor, gamma: float, lam: float, normalize: bool = True
    ) -> None:
        """GAE advantages and returns (see :func:`moe_loco_training.train.ppo.compute_gae`)."""
        from moe_loco_training.train.ppo import compute_gae

        d = self.data
        ret, adv = compute_gae(d["rewards"], d["values"], d["dones"], last_values, gamma, lam)
        d["returns"][:] = ret
        if normalize:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        d["advantages"][:] = adv

    def minibatches(
        self, num_mini_batches: int, num_epochs: int, generator: torch.Generator
    ) -> Iterator[SequenceBatch]:
        """``num_epochs`` passes; each splits a fresh permutation of the robots into
        ``num_mini_batches`` groups and yields their padded trajectories."""
        if self.initial_state is None or self.step != self.num_steps:
            raise RuntimeError("the rollout is not complete")
        n = self.num_envs
        if num_mini_batches > n:
            raise ValueError(f"num_mini_batches {num_mini_batches} > num_envs {n}")
        for _ in range(num_epochs):
            perm = torch.randperm(n, generator=generator, device=generator.device)
            for envs in torch.tensor_split(perm, num_mini_batches):
                yield self.batch(envs)

    def batch(self, envs: torch.Tensor) -> SequenceBatch:
        """The padded trajectories of the robots ``envs``."""
        d = self.data
        dones = d["dones"][:, envs]
        fields = {}
        mask = None
        for name in (*STEP_FIELDS, "use_privileged", "log_prob", "values"):
            fields[name], mask = split_and_pad(d[name][:, envs], dones)
        for name in ("returns", "advantages"):
            fields[name], _ = split_and_pad(d[name][:, envs], dones)
        first = first_trajectory(dones)
        owner = torch.repeat_interleave(
            torch.arange(len(envs), device=dones.device),
            (dones.clone().bool() | _last_row(dones)).sum(0),
        )
        assert self.initial_state is not None and mask is not None
        keep = first.to(torch.float32).view(1, -1, 1)
        state = RecurrentState(
            *(
                (h[:, envs][:, owner] * keep, c[:, envs][:, owner] * keep)
                for h, c in self.initial_state
            )
        )
        return SequenceBatch(**fields, mask=mask, state=state, envs=envs)


def _last_row(dones: torch.Tensor) -> torch.Tensor:
    m = torch.zeros_like(dones, dtype=torch.bool)
    m[-1] = True
    return m
