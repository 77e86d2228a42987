"""PPO for the recurrent MoE-Loco actor-critic, with the estimator's reconstruction loss.

The loss of one minibatch is eq. (4), L_surro + L_value + L_recon, plus the usual entropy bonus:

    L = L_clip + c_v L_value(clipped) + c_r ||Estimator(p, c) - [Enc(i), e]||^2 - c_e H[pi]

computed over the real (unpadded) steps of whole trajectories replayed from their stored initial
recurrent state. The learning rate follows the KL divergence between the rollout's and the
current policy (the legged_gym/rsl_rl rule: /1.5 above 2 x desired, x1.5 below desired / 2).
Data-parallel (``torchrun``, :mod:`.distributed`): each rank's gradients and KL are averaged over
the ranks before every step, so all ranks keep the same weights and the same learning rate.

Why not rsl-rl-lib: its PPO evaluates the actor and the critic as two separate models with their
own hidden states, while here the critic's value is mixed by the ACTOR's gate (one gate shared by
both MoEs, Section III-B), the model has three LSTMs fed by one forward pass, the actor's latent
is chosen per step by Probability Annealing Selection (which the stored batch must replay), and
the loss has the estimator's L_recon, for which its update has no hook (its extensions are RND and
symmetry). Expressing that would mean patching its update and storage; it is not installed here
either. The algorithm below follows its conventions (time-out bootstrapping, GAE, clipped value
loss, adaptive KL, trajectory padding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from moe_loco_training.models import MoELocoActorCritic, Privileged
from moe_loco_training.train import distributed
from moe_loco_training.train.config import AlgorithmConfig
from moe_loco_training.train.storage import RolloutStorage, SequenceBatch


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_values: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over (T, N): (returns, advantages).

    ``dones[t]`` ends the episode after step t (no bootstrap across it; time-outs are bootstrapped
    by the caller, through the reward). ``last_values`` (N,) is V of the state after the rollout.
    """
    t_len = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(last_values)
    for t in reversed(range(t_len)):
        next_v = last_values if t == t_len - 1 else values[t + 1]
        alive = 1.0 - dones[t].to(rewards.dtype)
        delta = rewards[t] + gamma * next_v * alive - values[t]
        running = delta + gamma * lam * alive * running
        adv[t] = running
    return adv + values, adv


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the entries where ``mask`` is true (padding may hold inf/nan)."""
    m = mask.to(x.dtype)
    return torch.where(mask, x, torch.zeros_like(x)).sum() / m.sum().clamp_min(1.0)


def surrogate_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    clip: float,
    mask: torch.Tensor,
) -> torch.Tensor:
    """PPO's clipped surrogate, to minimise: mean(max(-A r, -A clip(r, 1 -+ clip)))."""
    ratio = torch.exp(log_prob - old_log_prob)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    return masked_mean(torch.max(unclipped, clipped), mask)


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    clip: float,
    mask: torch.Tensor,
    use_clipped: bool = True,
) -> torch.Tensor:
    """Squared error to the returns; clipped: the worse of the raw and the clipped-change value."""
    raw = (values - returns).pow(2)
    if not use_clipped:
        return masked_mean(raw, mask)
    v_clip = old_values + (values - old_values).clamp(-clip, clip)
    return masked_mean(torch.max(raw, (v_clip - returns).pow(2)), mask)


def gaussian_kl(
    old_mu: torch.Tensor, old_sigma: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    """KL(old || new) of diagonal Gaussians, summed over the action dimension."""
    return torch.sum(
        torch.log(sigma / old_sigma + 1.0e-5)
        + (old_sigma.pow(2) + (old_mu - mu).pow(2)) / (2.0 * sigma.pow(2))
        - 0.5,
        dim=-1,
    )


def adapt_learning_rate(lr: float, kl: float, desired: float, lo: float, hi: float) -> float:
    """The KL-adaptive rule: /1.5 when kl > 2 desired, x1.5 when 0 < kl < desired / 2."""
    if kl > 2.0 * desired:
        return max(lo, lr / 1.5)
    if 0.0 < kl < desired / 2.0:
        return min(hi, lr * 1.5)
    return lr


def gaussian_log_prob(actions: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """log N(actions; mu, sigma) summed over the last dimension."""
    z = (actions - mu) / sigma
    return (-0.5 * z.pow(2) - torch.log(sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)


def gaussian_entropy(sigma: torch.Tensor) -> torch.Tensor:
    return (0.5 + 0.5 * math.log(2 * math.pi) + torch.log(sigma)).sum(-1)


@dataclass
class UpdateStats:
    """Means over the minibatches of one update."""

    surrogate: float
    value: float
    recon: float
    entropy: float
    kl: float
    learning_rate: float
    clip_fraction: float


class PPO:
    """The optimiser state and the update of the MoE-Loco actor-critic."""

    def __init__(
        self,
        model: MoELocoActorCritic,
        config: AlgorithmConfig,
        dist: distributed.DistContext = distributed.SINGLE,
    ) -> None:
        self.model = model
        self.config = config
        self.dist = dist  # several ranks (torchrun): gradients and KL averaged every step
        self.learning_rate = config.learning_rate
        self.optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate)

    def action_std(self) -> torch.Tensor:
        return self.model.action_std.clamp_min(self.config.min_std)

    def losses(self, mb: SequenceBatch) -> dict[str, torch.Tensor]:
        """Every loss term of one minibatch (graph attached), plus the KL and clip statistics."""
        cfg = self.config
        out = self.model(
            mb.proprio,
            mb.command,
            mb.state,
            Privileged(mb.explicit, mb.implicit),
            use_privileged=mb.use_privileged,
        )
        assert out.value is not None and out.privileged_latent is not None
        mu = out.action_mean
        sigma = self.action_std().expand_as(mu)
        log_prob = gaussian_log_prob(mb.actions, mu, sigma)
        mask = mb.mask
        target = out.privileged_latent
        if cfg.recon_detach_target:
            target = target.detach()
        recon = masked_mean((out.estimate - target).pow(2).mean(-1), mask)
        with torch.no_grad():
            kl = masked_mean(gaussian_kl(mb.mu, mb.sigma, mu, sigma), mask)
            ratio = torch.exp(log_prob - mb.log_prob)
            clip_frac = masked_mean(((ratio - 1.0).abs() > cfg.clip_param).float(), mask)
        return {
            "surrogate": surrogate_loss(log_prob, mb.log_prob, mb.advantages, cfg.clip_param, mask),
            "value": value_loss(
                out.value.squeeze(-1),
                mb.values,
                mb.returns,
                cfg.clip_param,
                mask,
                cfg.use_clipped_value_loss,
            ),
            "recon": recon,
            "entropy": masked_mean(gaussian_entropy(sigma), mask),
            "kl": kl,
            "clip_fraction": clip_frac,
        }

    def update(self, storage: RolloutStorage, generator: torch.Generator) -> UpdateStats:
        """``num_learning_epochs`` x ``num_mini_batches`` gradient steps on the stored rollout."""
        cfg = self.config
        sums = dict.fromkeys(("surrogate", "value", "recon", "entropy", "kl", "clip_fraction"), 0.0)
        count = 0
        for mb in storage.minibatches(cfg.num_mini_batches, cfg.num_learning_epochs, generator):
            terms = self.losses(mb)
            loss = (
                terms["surrogate"]
                + cfg.value_loss_coef * terms["value"]
                + cfg.recon_loss_coef * terms["recon"]
                - cfg.entropy_coef * terms["entropy"]
            )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # several ranks: gradients and KL averaged over them (one all-reduce), so that every
            # rank clips, adapts the rate and steps alike; one process: its own KL, as it was
            (kl,) = distributed.average_gradients(self.model.parameters(), self.dist, terms["kl"])
            if cfg.schedule == "adaptive":
                self.learning_rate = adapt_learning_rate(
                    self.learning_rate, kl, cfg.desired_kl, cfg.lr_min, cfg.lr_max
                )
                for group in self.optimizer.param_groups:
                    group["lr"] = self.learning_rate
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            for k in sums:
                sums[k] += kl if k == "kl" else float(terms[k].detach())
            count += 1
        storage.clear()
        means = {k: v / max(count, 1) for k, v in sums.items()}
        return UpdateStats(learning_rate=self.learning_rate, **means)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "learning_rate": self.learning_rate}

    def load_state_dict(self, d: dict) -> None:
        self.optimizer.load_state_dict(d["optimizer"])
        self.learning_rate = float(d["learning_rate"])
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate
