"""The MoE-Loco actor-critic (Section III-B, Table VI) and its "w/o MoE" baseline.

Data flow (time-major tensors, (T, B, dim); a (B, dim) input is treated as one step):

    z_t      = Enc(i_t)                                   implicit encoder over contact forces
    l_t      = [z_t, e_t, p_t]                            true dual-state representation
    l_hat_t  = [Estimator(p_t, c_t), p_t]                 estimated one (stage 2, deployment)
    h_t      = LSTM_actor([l_t or l_hat_t, c_t])
    g_hat    = w * softmax(g(h_t))                        eq. (2) and (5), w = 1 in training
    a_t      = sum_i g_hat_i f_i(h_t)                     eq. (3), mean of the action distribution
    V_t      = sum_i g_hat_i V_i(LSTM_critic([l_t, c_t])) critic MoE mixed by the SAME gate

Where the value loss's gradient goes (``critic_detach``, default True): the critic reads the gate
and Enc(i_t) detached, so L_value trains only the critic's LSTM and experts. The paper shares the
gate between the two MoEs and says nothing of its gradients; letting the value loss (weight 1,
returns of order 10) train the gate, the actor's LSTM and the encoder moved the policy on every
minibatch whatever its advantages said (KL 0.01-0.02 per minibatch at lr 1e-5 in the v0 run).

The baseline (``head="mlp"``) replaces each MoE by one standard head MLP (Table VI [640, 384, 128])
and has no gate: it is the same code with a single expert whose gate is identically 1.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Literal, NamedTuple

import torch
from torch import nn

from moe_loco_training.models.estimator import Estimator, ImplicitEncoder, LstmState
from moe_loco_training.models.mlp import linear_macs
from moe_loco_training.models.moe import ExpertHeads, GateNetwork, apply_expert_scale


@dataclass(frozen=True)
class ModelConfig:
    """Every size of the network. Defaults are the paper's (Table VI) for the Go2 observation."""

    proprio_dim: int = 42
    """p_t: projected gravity 3, base angular velocity 3, joint pos/vel 12 + 12, last action 12."""
    command_dim: int = 5
    """c_t: vx, vy, wz and the gait one-hot (2)."""
    num_actions: int = 12
    explicit_dim: int = 4
    """e_t: base linear velocity 3 and ground friction 1."""
    implicit_dim: int = 39
    """i_t: contact forces of the robot's links (13 bodies x 3)."""
    latent_dim: int = 8
    """Size of Enc(i_t)."""
    implicit_encoder_hidden: tuple[int, ...] = (32, 16)
    estimator_rnn_hidden: int = 256
    estimator_mlp_hidden: tuple[int, ...] = (256, 128)
    actor_rnn_hidden: int = 256
    critic_rnn_hidden: int = 256
    head: Literal["moe", "mlp"] = "moe"
    """``moe``: the paper's MoE heads; ``mlp``: the "w/o MoE" baseline with one standard head."""
    num_experts: int = 6
    expert_hidden: tuple[int, ...] = (256, 128, 128)
    gate_hidden: tuple[int, ...] = (128,)
    standard_head_hidden: tuple[int, ...] = (640, 384, 128)
    init_noise_std: float = 1.0
    """Initial standard deviation of the Gaussian action distribution (PPO)."""
    critic_detach: bool = True
    """The critic mixes its experts with the actor's gate and reads Enc(i_t), both detached:
    the value loss trains the critic's LSTM and experts only (see the module docstring)."""

    @property
    def estimate_dim(self) -> int:
        """Estimator output: [z_hat (latent_dim), e_hat (explicit_dim)]."""
        return self.latent_dim + self.explicit_dim

    @property
    def actor_in_dim(self) -> int:
        """[l_t, c_t] with l_t = [z_t, e_t, p_t]."""
        return self.estimate_dim + self.proprio_dim + self.command_dim

    @property
    def mixture_size(self) -> int:
        """Entries of the gate: the number of experts, or 1 for the baseline."""
        return self.num_experts if self.head == "moe" else 1

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> ModelConfig:
        """Inverse of :meth:`to_dict` (lists become tuples; unknown keys are an error)."""
        known = set(ModelConfig.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {unknown}")
        return ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


MODEL_PRESETS: dict[str, dict] = {
    "paper": {},
    "cpu": {
        "estimator_rnn_hidden": 64,
        "estimator_mlp_hidden": (64,),
        "actor_rnn_hidden": 64,
        "critic_rnn_hidden": 64,
        "expert_hidden": (64, 64),
        "gate_hidden": (32,),
        "standard_head_hidden": (230, 138, 46),
    },
}
"""Named sizes of the MoE-Loco structure (estimator, LSTMs, 6 experts, one shared gate):
``paper`` is Table VI (2.49 M parameters, for GPUs); ``cpu`` keeps every part and the six experts
at a quarter of the widths (0.21 M parameters), sized for training on a 2-core CPU. Both export
to the same policy-file contract. ``standard_head_hidden`` is the "w/o MoE" baseline's head,
widened to the MoE model's total parameter count (``matched_standard_head``), as
``train_wo_moe.yaml`` does for the paper preset."""


def model_config_from_preset(preset: str, overrides: dict | None = None) -> ModelConfig:
    """A :class:`ModelConfig`: the named preset's sizes, then ``overrides`` (its field names)."""
    if preset not in MODEL_PRESETS:
        raise ValueError(f"unknown model preset {preset!r} (known: {sorted(MODEL_PRESETS)})")
    return ModelConfig.from_dict({**MODEL_PRESETS[preset], **(overrides or {})})


class RecurrentState(NamedTuple):
    """(h, c) of the three LSTMs, each tensor (1, B, hidden)."""

    estimator: LstmState
    actor: LstmState
    critic: LstmState

    def detach(self) -> RecurrentState:
        """The same values cut from the autograd graph (truncated backpropagation)."""
        return RecurrentState(*((h.detach(), c.detach()) for h, c in self))

    def reset(self, done: torch.Tensor) -> RecurrentState:
        """Zero the state of the environments where ``done`` (B,) is true; keep the others."""
        keep = (~done.bool()).to(self.actor[0].dtype).view(1, -1, 1)
        return RecurrentState(*((h * keep, c * keep) for h, c in self))


@dataclass
class ModelOutput:
    """Everything one forward pass produces; time-major (T, B, ...) like the inputs."""

    action_mean: torch.Tensor
    """a_t of eq. (3), (T, B, num_actions)."""
    gate: torch.Tensor
    """Applied gate g_hat (after the expert scale), (T, B, mixture_size)."""
    gate_probs: torch.Tensor
    """softmax(g(h_t)) before the expert scale, (T, B, mixture_size)."""
    estimate: torch.Tensor
    """Estimator output [z_hat, e_hat], (T, B, estimate_dim)."""
    state: RecurrentState
    """The recurrent state after the last step."""
    privileged_latent: torch.Tensor | None = None
    """Reconstruction target [Enc(i_t), e_t], (T, B, estimate_dim); None without privileged obs."""
    value: torch.Tensor | None = None
    """V_t, (T, B, 1); None without privileged input (the critic needs the true l_t)."""


@dataclass
class Privileged:
    """The privileged observations of the simulator (never available on the robot)."""

    explicit: torch.Tensor
    """e_t: base linear velocity (3) and ground friction (1), (T, B, explicit_dim)."""
    implicit: torch.Tensor
    """i_t: contact forces of the links, (T, B, implicit_dim)."""


class MoELocoActorCritic(nn.Module):
    """Implicit encoder, estimator, actor LSTM + MoE, critic LSTM + MoE value, shared gate."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = config or ModelConfig()
        self.config = cfg
        self.implicit_encoder = ImplicitEncoder(
            cfg.implicit_dim, cfg.implicit_encoder_hidden, cfg.latent_dim
        )
        self.estimator = Estimator(
            cfg.proprio_dim + cfg.command_dim,
            cfg.estimator_rnn_hidden,
            cfg.estimator_mlp_hidden,
            cfg.estimate_dim,
        )
        self.actor_rnn = nn.LSTM(cfg.actor_in_dim, cfg.actor_rnn_hidden)
        self.critic_rnn = nn.LSTM(cfg.actor_in_dim, cfg.critic_rnn_hidden)
        if cfg.head == "moe":
            self.gate: GateNetwork | None = GateNetwork(
                cfg.actor_rnn_hidden, cfg.gate_hidden, cfg.num_experts
            )
            head_hidden, n = cfg.expert_hidden, cfg.num_experts
        elif cfg.head == "mlp":
            self.gate = None
            head_hidden, n = cfg.standard_head_hidden, 1
        else:
            raise ValueError(f"head must be 'moe' or 'mlp', got {cfg.head!r}")
        self.actor_heads = ExpertHeads(n, cfg.actor_rnn_hidden, head_hidden, cfg.num_actions)
        self.critic_heads = ExpertHeads(n, cfg.critic_rnn_hidden, head_hidden, 1)
        self.action_std = nn.Parameter(torch.full((cfg.num_actions,), cfg.init_noise_std))

    # ------------------------------------------------------------------ state
    def initial_state(self, batch_size: int = 1) -> RecurrentState:
        """All-zero recurrent state for ``batch_size`` environments."""
        p = next(self.parameters())
        cfg = self.config

        def zeros(hidden: int) -> LstmState:
            z = torch.zeros(1, batch_size, hidden, dtype=p.dtype, device=p.device)
            return z, z.clone()

        return RecurrentState(
            zeros(cfg.estimator_rnn_hidden),
            zeros(cfg.actor_rnn_hidden),
            zeros(cfg.critic_rnn_hidden),
        )

    # ------------------------------------------------------------------ pieces
    def privileged_latent(self, privileged: Privileged) -> torch.Tensor:
        """[Enc(i_t), e_t]: the part of l_t the estimator learns to reconstruct."""
        return torch.cat([self.implicit_encoder(privileged.implicit), privileged.explicit], dim=-1)

    def mix(self, h: torch.Tensor, expert_scale: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """Gate and action from the actor's h_t: (action_mean, applied gate, gate_probs)."""
        if self.gate is None:
            probs = torch.ones(*h.shape[:-1], 1, dtype=h.dtype, device=h.device)
        else:
            probs = self.gate(h)
        gate = apply_expert_scale(probs, expert_scale)
        return self.actor_heads(h, gate), gate, probs

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        proprio: torch.Tensor,
        command: torch.Tensor,
        state: RecurrentState,
        privileged: Privileged | None = None,
        use_privileged: torch.Tensor | bool | None = None,
        expert_scale: torch.Tensor | None = None,
    ) -> ModelOutput:
        """Run T steps for B environments.

        ``use_privileged`` chooses the actor's latent per environment and step: True feeds the true
        [Enc(i_t), e_t] (stage 1), False the estimate (stage 2 and deployment); a (T, B) or (B,)
        boolean tensor mixes them (Probability Annealing Selection). Default: True when
        ``privileged`` is given. The estimate reaches the actor detached, so the estimator learns
        from L_recon only. ``expert_scale`` (mixture_size,) is the w of eq. (5); None means ones.
        """
        single = proprio.dim() == 2
        if single:
            proprio, command = proprio.unsqueeze(0), command.unsqueeze(0)
            if privileged is not None:
                privileged = Privileged(
                    privileged.explicit.unsqueeze(0), privileged.implicit.unsqueeze(0)
                )
        pc = torch.cat([proprio, command], dim=-1)
        estimate, est_state = self.estimator(pc, state.estimator)

        target = None if privileged is None else self.privileged_latent(privileged)
        if use_privileged is None:
            use_privileged = target is not None
        if isinstance(use_privileged, bool):
            if use_privileged and target is None:
                raise ValueError("use_privileged needs the privileged observations")
            latent = target if use_privileged else estimate.detach()
        else:
            if target is None:
                raise ValueError("use_privileged needs the privileged observations")
            mask = use_privileged.bool()
            mask = mask.view(*mask.shape, 1) if mask.dim() == 2 else mask.view(1, -1, 1)
            latent = torch.where(mask, target, estimate.detach())

        h, actor_state = self.actor_rnn(torch.cat([latent, pc], dim=-1), state.actor)
        action_mean, gate, probs = self.mix(h, expert_scale)

        value, critic_state = None, state.critic
        if target is not None:
            detach = self.config.critic_detach
            critic_in = target.detach() if detach else target
            hc, critic_state = self.critic_rnn(torch.cat([critic_in, pc], dim=-1), state.critic)
            value = self.critic_heads(hc, gate.detach() if detach else gate)

        out = ModelOutput(
            action_mean=action_mean,
            gate=gate,
            gate_probs=probs,
            estimate=estimate,
            state=RecurrentState(est_state, actor_state, critic_state),
            privileged_latent=target,
            value=value,
        )
        if single:
            for name in ("action_mean", "gate", "gate_probs", "estimate", "privileged_latent"):
                t = getattr(out, name)
                if t is not None:
                    setattr(out, name, t.squeeze(0))
            if out.value is not None:
                out.value = out.value.squeeze(0)
        return out

    # ------------------------------------------------------------------ accounting
    def deploy_modules(self) -> dict[str, nn.Module]:
        """The parts that run on the robot (the stage-2 graph)."""
        mods: dict[str, nn.Module] = {
            "estimator": self.estimator,
            "actor_rnn": self.actor_rnn,
            "actor_heads": self.actor_heads,
        }
        if self.gate is not None:
            mods["gate"] = self.gate
        return mods

    def deploy_macs(self) -> int:
        """Multiply-accumulates of one batch-1 deploy step (LSTM gates, MLPs, experts, mixture)."""
        cfg = self.config
        total = 0
        for rnn in (self.estimator.rnn, self.actor_rnn):
            total += 4 * rnn.hidden_size * (rnn.input_size + rnn.hidden_size)
        total += linear_macs(self.estimator.head)
        if self.gate is not None:
            total += linear_macs(self.gate)
        total += self.actor_heads.macs() + cfg.mixture_size * cfg.num_actions
        return total


def on_cpu(model: MoELocoActorCritic) -> MoELocoActorCritic:
    """``model`` itself if its weights are on the CPU, else a CPU copy (evaluations and export
    run CPU environments and ONNX; a GPU run's model stays where it trains)."""
    if all(p.device.type == "cpu" for p in model.parameters()):
        return model
    return copy.deepcopy(model).cpu()


def _count(module: nn.Module | nn.Parameter) -> int:
    if isinstance(module, nn.Parameter):
        return module.numel()
    return sum(p.numel() for p in module.parameters())


@dataclass(frozen=True)
class ParameterCounts:
    """Parameters per part of a model; ``deployed`` is what the exported policy carries."""

    head: str
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def deployed(self) -> int:
        return sum(self.parts[k] for k in ("estimator", "actor_rnn", "actor_heads", "gate"))

    @property
    def heads(self) -> int:
        """Actor and critic heads with the gate: the part the MoE replaces."""
        return sum(self.parts[k] for k in ("actor_heads", "critic_heads", "gate"))


def parameter_counts(config: ModelConfig | None = None) -> ParameterCounts:
    """Parameter counts of the model built from ``config`` (default: the paper's MoE model)."""
    m = MoELocoActorCritic(config)
    parts = {
        "implicit_encoder": _count(m.implicit_encoder),
        "estimator": _count(m.estimator),
        "actor_rnn": _count(m.actor_rnn),
        "actor_heads": _count(m.actor_heads),
        "gate": 0 if m.gate is None else _count(m.gate),
        "critic_rnn": _count(m.critic_rnn),
        "critic_heads": _count(m.critic_heads),
        "action_std": _count(m.action_std),
    }
    return ParameterCounts(head=m.config.head, parts=parts)


def matched_standard_head(
    config: ModelConfig | None = None, base: Sequence[int] = (640, 384, 128)
) -> tuple[int, ...]:
    """Widths proportional to ``base`` whose baseline has the MoE model's total parameter count.

    Table VI's [640, 384, 128] does not reach the count of six [256, 128, 128] experts plus the
    gate (see :func:`compare_parameter_counts`); this gives the widths that do, for a matched run.
    """
    cfg = replace(config or ModelConfig(), head="moe")
    target = parameter_counts(cfg).total
    best: tuple[int, ...] = tuple(base)
    best_err = None
    for k in range(100, 400):
        dims = tuple(max(1, round(d * k / 100)) for d in base)
        n = parameter_counts(replace(cfg, head="mlp", standard_head_hidden=dims)).total
        err = abs(n - target)
        if best_err is None or err < best_err:
            best, best_err = dims, err
        if n > target:
            break
    return best


def compare_parameter_counts(config: ModelConfig | None = None) -> dict[str, ParameterCounts]:
    """Parameter counts of the MoE model and of its "w/o MoE" baseline (same config otherwise)."""
    cfg = config or ModelConfig()
    return {
        "moe": parameter_counts(replace(cfg, head="moe")),
        "mlp": parameter_counts(replace(cfg, head="mlp")),
    }


def format_parameter_counts(config: ModelConfig | None = None) -> str:
    """A table of :func:`compare_parameter_counts`, one row per part."""
    counts = compare_parameter_counts(config)
    moe, base = counts["moe"], counts["mlp"]
    cfg = config or ModelConfig()
    rows = [f"{'part':<18}{'MoE':>12}{'w/o MoE':>12}"]
    for k in moe.parts:
        rows.append(f"{k:<18}{moe.parts[k]:>12,}{base.parts[k]:>12,}")
    rows.append(f"{'heads (+gate)':<18}{moe.heads:>12,}{base.heads:>12,}")
    rows.append(f"{'deployed':<18}{moe.deployed:>12,}{base.deployed:>12,}")
    rows.append(f"{'total':<18}{moe.total:>12,}{base.total:>12,}")
    rows.append(
        f"baseline head {list(cfg.standard_head_hidden)}: {base.total / moe.total:.3f} of the MoE "
        f"total; widths matching it: {list(matched_standard_head(cfg))}"
    )
    return "\n".join(rows)
