"""The MoE-Loco networks: sizes (Table VI), eq. (2), (3), (5), the shared gate, recurrence."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from moe_loco_training.models import (
    MODEL_PRESETS,
    ModelConfig,
    MoELocoActorCritic,
    Privileged,
    compare_parameter_counts,
    format_parameter_counts,
    matched_standard_head,
    model_config_from_preset,
    parameter_counts,
)

T, B = 5, 3


@pytest.fixture(scope="module")
def model() -> MoELocoActorCritic:
    torch.manual_seed(0)
    return MoELocoActorCritic().eval()


def inputs(cfg: ModelConfig, t: int = T, b: int = B, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(t, b, cfg.proprio_dim, generator=g)
    c = torch.randn(t, b, cfg.command_dim, generator=g)
    priv = Privileged(
        explicit=torch.randn(t, b, cfg.explicit_dim, generator=g),
        implicit=torch.randn(t, b, cfg.implicit_dim, generator=g),
    )
    return p, c, priv


def manual_heads(heads, x: torch.Tensor) -> torch.Tensor:
    """Each expert as a separate chain of F.linear + ELU: (E, ..., out)."""
    outs = []
    for e in range(heads.num_experts):
        y = x
        for k, (w, b) in enumerate(zip(heads.weights, heads.biases, strict=True)):
            y = F.linear(y, w[e].T, b[e, 0])
            if k < len(heads.weights) - 1:
                y = F.elu(y)
        outs.append(y)
    return torch.stack(outs)


def test_paper_sizes(model):
    cfg = model.config
    assert (cfg.proprio_dim, cfg.command_dim, cfg.num_actions) == (42, 5, 12)
    assert model.estimator.rnn.hidden_size == 256
    assert model.actor_rnn.hidden_size == 256 and model.critic_rnn.hidden_size == 256
    assert model.actor_rnn.input_size == 8 + 4 + 42 + 5  # [z, e, p, c]
    assert model.actor_heads.num_experts == 6
    assert model.actor_heads.layer_dims == [(256, 256), (256, 128), (128, 128), (128, 12)]
    assert model.critic_heads.layer_dims == [(256, 256), (256, 128), (128, 128), (128, 1)]
    gate_linears = [m for m in model.gate.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in gate_linears] == [(256, 128), (128, 6)]
    enc = [m for m in model.implicit_encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in enc] == [(39, 32), (32, 16), (16, 8)]
    est = [m for m in model.estimator.head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in est] == [(256, 256), (256, 128), (128, 12)]


def test_parameter_counts_of_moe_and_baseline():
    counts = compare_parameter_counts()
    moe, mlp = counts["moe"], counts["mlp"]
    table = format_parameter_counts()
    print(table)
    # the paper's note: LSTM 256 + 6 experts [256,128,128] + gate [128] is about 1.06 M
    assert moe.parts["actor_rnn"] + moe.parts["actor_heads"] + moe.parts["gate"] == 1_058_766
    assert moe.total == sum(p.numel() for p in MoELocoActorCritic().parameters())
    assert mlp.parts["gate"] == 0
    assert mlp.parts["actor_heads"] == (256 * 640 + 640) + (640 * 384 + 384) + (384 * 128 + 128) + (
        128 * 12 + 12
    )
    # everything but the heads is shared
    for part in ("implicit_encoder", "estimator", "actor_rnn", "critic_rnn"):
        assert moe.parts[part] == mlp.parts[part]
    assert "w/o MoE" in table and f"{moe.total:,}" in table and f"{mlp.total:,}" in table
    matched = parameter_counts(
        ModelConfig(head="mlp", standard_head_hidden=matched_standard_head())
    )
    assert abs(matched.total - moe.total) / moe.total < 0.005


def test_forward_shapes_sequence_and_single(model):
    cfg = model.config
    p, c, priv = inputs(cfg)
    out = model(p, c, model.initial_state(B), privileged=priv)
    assert out.action_mean.shape == (T, B, 12)
    assert out.gate.shape == (T, B, 6) and out.estimate.shape == (T, B, 12)
    assert out.value.shape == (T, B, 1) and out.privileged_latent.shape == (T, B, 12)
    single = model(
        p[0],
        c[0],
        model.initial_state(B),
        privileged=Privileged(priv.explicit[0], priv.implicit[0]),
    )
    assert single.action_mean.shape == (B, 12) and single.value.shape == (B, 1)
    torch.testing.assert_close(single.action_mean, out.action_mean[0])
    deploy = model(p, c, model.initial_state(B))
    assert deploy.value is None and deploy.privileged_latent is None


def test_eq2_eq3_gate_is_softmax_and_action_is_mixture(model):
    p, c, priv = inputs(model.config)
    with torch.no_grad():
        out = model(p, c, model.initial_state(B), privileged=priv)
        h, _ = model.actor_rnn(
            torch.cat([model.privileged_latent(priv), p, c], -1), model.initial_state(B).actor
        )
        logits = model.gate.net(h)
        experts = manual_heads(model.actor_heads, h)  # (E, T, B, 12)
    probs = torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)
    torch.testing.assert_close(out.gate, probs)
    torch.testing.assert_close(out.gate.sum(-1), torch.ones(T, B))
    expected = (probs.permute(2, 0, 1).unsqueeze(-1) * experts).sum(0)
    torch.testing.assert_close(out.action_mean, expected, atol=1e-6, rtol=1e-5)


def test_eq5_expert_scale_multiplies_gate_without_renormalising(model):
    p, c, priv = inputs(model.config)
    w = torch.tensor([0.0, 2.0, 1.0, 0.0, 0.0, 0.0])
    with torch.no_grad():
        base = model(p, c, model.initial_state(B), privileged=priv)
        scaled = model(p, c, model.initial_state(B), privileged=priv, expert_scale=w)
        h, _ = model.actor_rnn(
            torch.cat([model.privileged_latent(priv), p, c], -1), model.initial_state(B).actor
        )
        experts = manual_heads(model.actor_heads, h)
    torch.testing.assert_close(scaled.gate, base.gate * w, rtol=0, atol=0)
    torch.testing.assert_close(scaled.gate_probs, base.gate_probs)
    assert not torch.allclose(scaled.gate.sum(-1), torch.ones(T, B))  # no renormalisation
    expected = 2.0 * base.gate[..., 1:2] * experts[1] + base.gate[..., 2:3] * experts[2]
    torch.testing.assert_close(scaled.action_mean, expected, atol=1e-6, rtol=1e-5)


def test_critic_moe_uses_the_actor_gate(model):
    p, c, priv = inputs(model.config)
    with torch.no_grad():
        out = model(p, c, model.initial_state(B), privileged=priv)
        target = model.privileged_latent(priv)
        hc, _ = model.critic_rnn(torch.cat([target, p, c], -1), model.initial_state(B).critic)
        values = manual_heads(model.critic_heads, hc)  # (E, T, B, 1)
    expected = (out.gate.permute(2, 0, 1).unsqueeze(-1) * values).sum(0)
    torch.testing.assert_close(out.value, expected, atol=1e-6, rtol=1e-5)


def test_privileged_selection_per_environment(model):
    """Probability Annealing Selection: a per-env mask picks the true latent or the estimate."""
    p, c, priv = inputs(model.config)
    s = model.initial_state(B)
    with torch.no_grad():
        true = model(p, c, s, privileged=priv, use_privileged=True)
        est = model(p, c, s, privileged=priv, use_privileged=False)
        deploy = model(p, c, s)
        mixed = model(p, c, s, privileged=priv, use_privileged=torch.tensor([True, False, True]))
    assert not torch.allclose(true.action_mean, est.action_mean)
    torch.testing.assert_close(est.action_mean, deploy.action_mean)
    torch.testing.assert_close(mixed.action_mean[:, 0], true.action_mean[:, 0])
    torch.testing.assert_close(mixed.action_mean[:, 1], est.action_mean[:, 1])
    # the critic always sees the true l_t, but mixes its experts with the actor's gate
    torch.testing.assert_close(mixed.value[:, 0], true.value[:, 0])
    torch.testing.assert_close(mixed.value[:, 1], est.value[:, 1])
    assert not torch.allclose(true.value[:, 1], est.value[:, 1])
    with pytest.raises(ValueError, match="privileged"):
        model(p, c, s, use_privileged=True)


def test_estimator_learns_from_reconstruction_only():
    torch.manual_seed(3)
    m = MoELocoActorCritic()
    p, c, priv = inputs(m.config)
    out = m(p, c, m.initial_state(B), privileged=priv, use_privileged=False)
    out.action_mean.sum().backward(retain_graph=True)
    assert all(q.grad is None for q in m.estimator.parameters())
    assert m.actor_rnn.weight_ih_l0.grad is not None
    recon = ((out.estimate - out.privileged_latent.detach()) ** 2).mean()
    recon.backward()
    assert all(q.grad is not None and q.grad.abs().sum() > 0 for q in m.estimator.parameters())


def test_sequence_equals_step_by_step(model):
    p, c, priv = inputs(model.config)
    with torch.no_grad():
        seq = model(p, c, model.initial_state(B), privileged=priv)
        state = model.initial_state(B)
        for t in range(T):
            step = model(
                p[t], c[t], state, privileged=Privileged(priv.explicit[t], priv.implicit[t])
            )
            state = step.state
            torch.testing.assert_close(step.action_mean, seq.action_mean[t])
            torch.testing.assert_close(step.value, seq.value[t])
    for a, b in zip(state, seq.state, strict=True):
        torch.testing.assert_close(a[0], b[0])
        torch.testing.assert_close(a[1], b[1])


def test_recurrent_state_reset_and_detach(model):
    p, c, priv = inputs(model.config)
    out = model(p, c, model.initial_state(B), privileged=priv)
    reset = out.state.reset(torch.tensor([False, True, False]))
    for (h, cc), (h0, c0) in zip(reset, out.state, strict=True):
        assert torch.all(h[:, 1] == 0) and torch.all(cc[:, 1] == 0)
        torch.testing.assert_close(h[:, 0], h0[:, 0])
        torch.testing.assert_close(cc[:, 2], c0[:, 2])
    assert all(not t.requires_grad for pair in out.state.detach() for t in pair)
    # a reset environment continues exactly like a fresh one
    with torch.no_grad():
        fresh = model(
            p[0, 1:2],
            c[0, 1:2],
            model.initial_state(1),
            privileged=Privileged(priv.explicit[0, 1:2], priv.implicit[0, 1:2]),
        )
        cont = model(p[0], c[0], reset, privileged=Privileged(priv.explicit[0], priv.implicit[0]))
    torch.testing.assert_close(cont.action_mean[1:2], fresh.action_mean)


def test_baseline_without_moe():
    torch.manual_seed(0)
    m = MoELocoActorCritic(ModelConfig(head="mlp")).eval()
    assert m.gate is None and m.config.mixture_size == 1
    assert m.actor_heads.layer_dims == [(256, 640), (640, 384), (384, 128), (128, 12)]
    p, c, priv = inputs(m.config)
    with torch.no_grad():
        out = m(p, c, m.initial_state(B), privileged=priv)
        h, _ = m.actor_rnn(
            torch.cat([m.privileged_latent(priv), p, c], -1), m.initial_state(B).actor
        )
        expected = manual_heads(m.actor_heads, h)[0]
    assert torch.all(out.gate == 1.0)
    torch.testing.assert_close(out.action_mean, expected, atol=1e-6, rtol=1e-5)
    assert out.value.shape == (T, B, 1)


def test_config_round_trip_and_validation():
    cfg = ModelConfig(num_experts=4, expert_hidden=(64, 32))
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        ModelConfig.from_dict({**cfg.to_dict(), "experts": 3})
    with pytest.raises(ValueError, match="head"):
        MoELocoActorCritic(ModelConfig(head="transformer"))  # type: ignore[arg-type]


def _grads(module: torch.nn.Module) -> list[torch.Tensor | None]:
    return [q.grad for q in module.parameters()]


@pytest.mark.parametrize("detach", [True, False])
def test_value_loss_trains_only_the_critic_when_detached(detach):
    """With ``critic_detach`` (the default) the value's gradient stops at the critic: the gate,
    the actor's LSTM and experts, the encoder and the estimator get none of it."""
    torch.manual_seed(4)
    m = MoELocoActorCritic(ModelConfig(critic_detach=detach, **MODEL_PRESETS["cpu"]))
    p, c, priv = inputs(m.config)
    out = m(p, c, m.initial_state(B), privileged=priv)
    (out.value**2).sum().backward()
    critic = (m.critic_rnn, m.critic_heads)
    assert all(g is not None and g.abs().sum() > 0 for mod in critic for g in _grads(mod))
    actor_side = (m.gate, m.actor_rnn, m.actor_heads, m.implicit_encoder, m.estimator)
    untouched = [g is None or g.abs().sum() == 0 for mod in actor_side for g in _grads(mod)]
    if detach:
        assert all(untouched)
    else:  # the paper's literal sharing: the value loss moves the gate, the LSTM and Enc
        assert not all(untouched)
        assert any(g is not None and g.abs().sum() > 0 for g in _grads(m.gate))
        assert any(g is not None and g.abs().sum() > 0 for g in _grads(m.implicit_encoder))


def test_model_presets_keep_the_structure_and_one_switch_picks_them():
    paper = model_config_from_preset("paper")
    cpu = model_config_from_preset("cpu")
    assert paper == ModelConfig()
    assert cpu.num_experts == paper.num_experts == 6 and cpu.head == "moe"
    assert len(cpu.expert_hidden) >= 2 and cpu.gate_hidden
    n_paper, n_cpu = parameter_counts(paper).total, parameter_counts(cpu).total
    assert n_cpu < n_paper / 10, (n_cpu, n_paper)
    # overrides go over the preset
    assert model_config_from_preset("cpu", {"init_noise_std": 0.5}).actor_rnn_hidden == 64
    with pytest.raises(ValueError, match="unknown model preset 'tiny'"):
        model_config_from_preset("tiny")
    # every part of the paper's structure is there, with its own parameters
    m = MoELocoActorCritic(cpu)
    counts = parameter_counts(cpu).parts
    assert all(counts[k] > 0 for k in ("estimator", "actor_rnn", "actor_heads", "gate"))
    assert m.actor_heads.num_experts == 6
    # its "w/o MoE" head matches the MoE model's parameter count (within 1 %)
    base = parameter_counts(replace(cpu, head="mlp")).total
    assert abs(base - n_cpu) / n_cpu < 0.01, (base, n_cpu)
