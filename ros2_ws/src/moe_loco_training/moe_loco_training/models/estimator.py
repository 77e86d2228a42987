"""The privileged-state encoder and the estimator of the two-stage training (Section III-B).

``ImplicitEncoder`` compresses the implicit privileged state i_t (contact forces of the links) to a
small latent z_t = Enc(i_t). ``Estimator`` reconstructs [z_t, e_t] (latent plus explicit privileged
state: base linear velocity and ground friction) from proprioception and command alone, through an
LSTM and an MLP; stage 2 feeds its output to the actor in place of the privileged values.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from moe_loco_training.models.mlp import mlp

LstmState = tuple[torch.Tensor, torch.Tensor]
"""(h, c) of one single-layer LSTM, each (1, batch, hidden)."""


class ImplicitEncoder(nn.Module):
    """Enc: MLP ``implicit_dim -> hidden (ELU) -> latent_dim`` (Table VI: hidden [32, 16])."""

    def __init__(self, implicit_dim: int, hidden: Sequence[int], latent_dim: int) -> None:
        super().__init__()
        self.net = mlp(implicit_dim, hidden, latent_dim)

    def forward(self, implicit: torch.Tensor) -> torch.Tensor:
        return self.net(implicit)


class Estimator(nn.Module):
    """Estimator(p_t, c_t) -> [z_hat_t, e_hat_t]: LSTM over [p_t, c_t], then the latent encoder MLP.

    Inputs are time-major sequences (T, B, dim); the LSTM state is carried explicitly.
    """

    def __init__(
        self, in_dim: int, rnn_hidden: int, mlp_hidden: Sequence[int], out_dim: int
    ) -> None:
        super().__init__()
        self.rnn = nn.LSTM(in_dim, rnn_hidden)
        self.head = mlp(rnn_hidden, mlp_hidden, out_dim)

    def forward(self, x: torch.Tensor, state: LstmState) -> tuple[torch.Tensor, LstmState]:
        """``x`` (T, B, in_dim) -> estimate (T, B, out_dim) and the next LSTM state."""
        h, next_state = self.rnn(x, state)
        return self.head(h), next_state
