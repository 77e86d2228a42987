"""The mixture of experts of the paper's eq. (2), (3) and (5).

``GateNetwork`` holds the gating MLP g; ``ExpertHeads`` holds N expert MLPs f_i, stored as stacked
weight tensors so that all experts run as one batched matrix product per layer (one kernel per
layer in torch and in the exported ONNX graph instead of N). The mixture is

    g_hat_i = w_i * softmax(g(h))_i            (eq. 5; w = 1 gives eq. 2)
    out     = sum_i g_hat_i * f_i(h)           (eq. 3)

with no renormalisation after the scale ``w``, as the paper writes it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from moe_loco_training.models.mlp import mlp


class ExpertHeads(nn.Module):
    """``num_experts`` MLPs ``in_dim -> hidden... -> out_dim`` (ELU), evaluated together.

    Layer ``k`` holds ``weight_k`` of shape (num_experts, fan_in, fan_out) and ``bias_k`` of shape
    (num_experts, 1, fan_out); each expert is initialised like an ``nn.Linear`` of its own.
    """

    def __init__(self, num_experts: int, in_dim: int, hidden: Sequence[int], out_dim: int) -> None:
        super().__init__()
        if num_experts < 1:
            raise ValueError(f"num_experts must be >= 1, got {num_experts}")
        self.num_experts = num_experts
        self.in_dim = in_dim
        self.out_dim = out_dim
        dims = [in_dim, *hidden, out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(dims):
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(torch.empty(num_experts, fan_in, fan_out)))
            self.biases.append(nn.Parameter(torch.empty(num_experts, 1, fan_out)))
            nn.init.uniform_(self.weights[-1], -bound, bound)
            nn.init.uniform_(self.biases[-1], -bound, bound)

    @property
    def layer_dims(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of each layer of one expert."""
        return [(int(w.shape[1]), int(w.shape[2])) for w in self.weights]

    def expert_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert's output for a flat batch ``x`` (B, in_dim): (num_experts, B, out_dim)."""
        y = x.unsqueeze(0)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            y = torch.matmul(y, w) + b
            if k < last:
                y = F.elu(y)
        return y

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """Mix the experts: ``x`` (..., in_dim), ``gate`` (..., num_experts) -> (..., out_dim)."""
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.in_dim)
        y = self.expert_outputs(flat).transpose(0, 1)  # (B, E, out)
        g = gate.reshape(-1, 1, self.num_experts)  # (B, 1, E)
        return torch.matmul(g, y).reshape(*lead, self.out_dim)

    def macs(self) -> int:
        """Multiply-accumulates of one batch-1 pass (all experts), without the mixture."""
        return self.num_experts * sum(a * b for a, b in self.layer_dims)


class GateNetwork(nn.Module):
    """The gating network g: MLP ``in_dim -> hidden -> num_experts`` followed by a softmax."""

    def __init__(self, in_dim: int, hidden: Sequence[int], num_experts: int) -> None:
        super().__init__()
        self.num_experts = num_experts
        self.net = mlp(in_dim, hidden, num_experts)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """softmax(g(h)) over the last dimension: the gate of eq. (2), before any expert scale."""
        return torch.softmax(self.net(h), dim=-1)


def apply_expert_scale(gate: torch.Tensor, expert_scale: torch.Tensor | None) -> torch.Tensor:
    """Eq. (5): ``g_hat_i = w_i * gate_i`` (no renormalisation); ``None`` means w = 1."""
    return gate if expert_scale is None else gate * expert_scale
