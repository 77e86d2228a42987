"""The PPO pieces on crafted tensors: GAE, clipped losses, KL-adaptive learning rate, the PAS
schedule, sequence minibatches replaying stored recurrent states, and the training configs."""

from __future__ import annotations

import math

import pytest
import torch

from moe_loco_training.models import (
    ModelConfig,
    MoELocoActorCritic,
    Privileged,
    matched_standard_head,
)
from moe_loco_training.train.config import TrainConfigError, load_train_config, merge
from moe_loco_training.train.pas import ProbabilityAnnealing
from moe_loco_training.train.ppo import (
    adapt_learning_rate,
    compute_gae,
    gaussian_kl,
    surrogate_loss,
    value_loss,
)
from moe_loco_training.train.storage import RolloutStorage, split_and_pad, unpad

TINY = ModelConfig(
    estimator_rnn_hidden=8,
    estimator_mlp_hidden=(8,),
    actor_rnn_hidden=8,
    critic_rnn_hidden=8,
    num_experts=3,
    expert_hidden=(8,),
    gate_hidden=(8,),
)


# ------------------------------------------------------------------ GAE
def naive_gae(rewards, values, dones, last, gamma, lam):
    t_len, n = rewards.shape
    adv = torch.zeros(t_len, n)
    for i in range(n):
        for t in range(t_len):
            a, disc = 0.0, 1.0
            for k in range(t, t_len):
                nxt = last[i] if k == t_len - 1 else values[k + 1, i]
                alive = 0.0 if dones[k, i] else 1.0
                a += disc * (rewards[k, i] + gamma * nxt * alive - values[k, i])
                if dones[k, i]:
                    break
                disc *= gamma * lam
            adv[t, i] = a
    return adv


def test_gae_matches_hand_values_and_the_definition():
    # one robot, no done, V = 0: returns are discounted reward sums plus the bootstrap
    r = torch.ones(3, 1)
    v = torch.zeros(3, 1)
    d = torch.zeros(3, 1, dtype=torch.bool)
    ret, adv = compute_gae(r, v, d, torch.tensor([2.0]), gamma=0.5, lam=1.0)
    assert torch.allclose(ret[:, 0], torch.tensor([1 + 0.5 + 0.25 + 0.125 * 2, 1 + 0.5 + 0.5, 2.0]))
    # a done cuts the bootstrap
    d[1, 0] = True
    ret, _ = compute_gae(r, v, d, torch.tensor([2.0]), gamma=0.5, lam=1.0)
    assert torch.allclose(ret[:, 0], torch.tensor([1.5, 1.0, 2.0]))
    # random data against the n-step definition
    g = torch.Generator().manual_seed(0)
    r = torch.randn(7, 4, generator=g)
    v = torch.randn(7, 4, generator=g)
    d = torch.rand(7, 4, generator=g) < 0.2
    last = torch.randn(4, generator=g)
    ret, adv = compute_gae(r, v, d, last, 0.9, 0.8)
    assert torch.allclose(adv, naive_gae(r, v, d, last, 0.9, 0.8), atol=1e-5)
    assert torch.allclose(ret, adv + v)


# ------------------------------------------------------------------ losses
def test_clipped_surrogate_stops_the_gradient_outside_the_trust_region():
    mask = torch.ones(2, dtype=torch.bool)
    old = torch.zeros(2)
    adv = torch.tensor([1.0, -1.0])
    # ratio e^0.5 > 1.2 with A > 0 and ratio e^-0.5 < 0.8 with A < 0: both clipped
    lp = torch.tensor([0.5, -0.5], requires_grad=True)
    loss = surrogate_loss(lp, old, adv, 0.2, mask)
    assert loss.item() == pytest.approx((-1.2 + 0.8) / 2)
    loss.backward()
    assert torch.all(lp.grad == 0)
    # inside the region the loss is -A r and has a gradient
    lp = torch.tensor([0.1, -0.1], requires_grad=True)
    loss = surrogate_loss(lp, old, adv, 0.2, mask)
    assert loss.item() == pytest.approx((-math.exp(0.1) + math.exp(-0.1)) / 2)
    loss.backward()
    assert torch.all(lp.grad != 0)
    # ratio below 1 - clip with A > 0 is NOT clipped (pessimistic bound)
    lp = torch.tensor([-0.5, 0.0], requires_grad=True)
    surrogate_loss(lp, old, torch.tensor([1.0, 0.0]), 0.2, mask).backward()
    assert lp.grad[0] != 0


def test_clipped_value_loss_and_masking():
    old = torch.tensor([0.0, 0.0, 0.0])
    ret = torch.tensor([1.0, 1.0, 100.0])
    mask = torch.tensor([True, True, False])
    v = torch.tensor([0.5, 1.5, float("inf")])
    # clipped to 0.2: first (0.2 - 1)^2 = 0.64 > 0.25; second max(0.25, 0.64) = 0.64
    assert value_loss(v, old, ret, 0.2, mask).item() == pytest.approx(0.64)
    assert value_loss(v, old, ret, 0.2, mask, use_clipped=False).item() == pytest.approx(0.25)


def test_kl_adaptive_learning_rate():
    assert adapt_learning_rate(1e-3, 0.05, 0.01, 1e-5, 1e-2) == pytest.approx(1e-3 / 1.5)
    assert adapt_learning_rate(1e-3, 0.001, 0.01, 1e-5, 1e-2) == pytest.approx(1.5e-3)
    assert adapt_learning_rate(1e-3, 0.01, 0.01, 1e-5, 1e-2) == 1e-3
    assert adapt_learning_rate(1e-3, 0.0, 0.01, 1e-5, 1e-2) == 1e-3
    assert adapt_learning_rate(1e-2, 1e-6, 0.01, 1e-5, 1e-2) == 1e-2
    assert adapt_learning_rate(1e-5, 1.0, 0.01, 1e-5, 1e-2) == 1e-5
    mu, s = torch.zeros(1, 2), torch.ones(1, 2)
    assert gaussian_kl(mu, s, mu, s).item() == pytest.approx(0.0, abs=1e-4)
    assert gaussian_kl(mu, s, mu + 1, s).item() == pytest.approx(1.0, abs=1e-4)


# ------------------------------------------------------------------ PAS
def test_pas_schedule_anneals_to_the_estimate_alone():
    pas = ProbabilityAnnealing(alpha=0.9, floor=0.01)
    assert pas.probability(0) == 1.0
    assert pas.probability(10) == pytest.approx(0.9**10)
    assert pas.probability(43) == pytest.approx(0.9**43)  # 0.0108
    assert pas.probability(44) == 0.0  # 0.0097 < floor
    g = torch.Generator().manual_seed(0)
    assert pas.select(5, g).all() and pas.steps == 1
    pas.steps = 7
    frac = torch.stack([pas.select(4000, g) for _ in range(1)]).float().mean().item()
    assert frac == pytest.approx(0.9**7, abs=0.03)
    pas.steps = 100
    assert not pas.select(1000, g).any()
    other = ProbabilityAnnealing(0.5, 0.1)
    other.load_state_dict(pas.state_dict())
    assert other.steps == 101 and other.alpha == 0.9


def test_pas_alpha_derived_from_the_schedule():
    cfg = load_train_config("train")
    steps = 10000 * 24
    assert cfg.pas_alpha() ** (0.8 * steps) == pytest.approx(1e-3, rel=1e-6)
    small = load_train_config("train", {"iteration_scale": 0.01})
    assert small.pas_alpha() ** (0.8 * 100 * 24) == pytest.approx(1e-3, rel=1e-6)


# ------------------------------------------------------------------ sequences
def test_split_and_pad_round_trip():
    x = torch.arange(12.0).view(4, 3)  # T=4, N=3
    dones = torch.zeros(4, 3, dtype=torch.bool)
    dones[1, 0] = True
    dones[0, 2] = dones[2, 2] = True
    padded, mask = split_and_pad(x, dones)
    # robot 0: [0, 3] [6, 9]; robot 1: [1, 4, 7, 10]; robot 2: [2] [5, 8] [11]
    assert padded.shape == (4, 6)
    assert mask.sum(0).tolist() == [2, 2, 4, 1, 2, 1]
    assert padded[:2, 0].tolist() == [0.0, 3.0] and padded[:1, 5].tolist() == [11.0]
    assert torch.equal(unpad(padded, mask, 4, 3), x)


def test_minibatch_replays_the_rollout_from_stored_states():
    """The update's forward pass over padded trajectories with their stored initial states gives
    what the step-by-step rollout computed (the recurrent bookkeeping is right)."""
    torch.manual_seed(0)
    model = MoELocoActorCritic(TINY)
    t_len, n = 9, 5
    g = torch.Generator().manual_seed(1)
    obs = {
        "proprio": torch.randn(t_len, n, 42, generator=g),
        "command": torch.randn(t_len, n, 5, generator=g),
        "explicit": torch.randn(t_len, n, 4, generator=g),
        "implicit": torch.randn(t_len, n, 39, generator=g),
    }
    dones = torch.rand(t_len, n, generator=g) < 0.25
    use = torch.rand(t_len, n, generator=g) < 0.5
    dims = {"proprio_dim": 42, "command_dim": 5, "explicit_dim": 4, "implicit_dim": 39}
    st = RolloutStorage(t_len, n, {**dims, "num_actions": 12})
    # a non-zero state at the start of the rollout (as after earlier rollouts)
    state = model.initial_state(n)
    state = type(state)(*((torch.randn_like(h), torch.randn_like(c)) for h, c in state))
    st.initial_state = state
    means, values = [], []
    with torch.no_grad():
        for t in range(t_len):
            out = model(
                obs["proprio"][t],
                obs["command"][t],
                state,
                Privileged(obs["explicit"][t], obs["implicit"][t]),
                use_privileged=use[t],
            )
            means.append(out.action_mean)
            values.append(out.value.squeeze(-1))
            st.add(**{k: v[t] for k, v in obs.items()}, use_privileged=use[t])
            st.set_rewards(torch.zeros(n), dones[t])
            state = out.state.reset(dones[t])
        envs = torch.tensor([3, 0, 4])
        mb = st.batch(envs)
        out = model(
            mb.proprio,
            mb.command,
            mb.state,
            Privileged(mb.explicit, mb.implicit),
            use_privileged=mb.use_privileged,
        )
    mean = unpad(out.action_mean, mb.mask, t_len, len(envs))
    value = unpad(out.value.squeeze(-1), mb.mask, t_len, len(envs))
    ref_mean = torch.stack(means)[:, envs]
    ref_value = torch.stack(values)[:, envs]
    assert torch.allclose(mean, ref_mean, atol=1e-5)
    assert torch.allclose(value, ref_value, atol=1e-5)
    # without the stored state (zeros) the first trajectories differ: the state matters
    zero = type(mb.state)(*((torch.zeros_like(h), torch.zeros_like(c)) for h, c in mb.state))
    with torch.no_grad():
        out0 = model(
            mb.proprio,
            mb.command,
            zero,
            Privileged(mb.explicit, mb.implicit),
            use_privileged=mb.use_privileged,
        )
    assert not torch.allclose(unpad(out0.action_mean, mb.mask, t_len, 3), ref_mean, atol=1e-3)


def test_minibatches_cover_every_robot_each_epoch():
    st = RolloutStorage(
        3,
        6,
        {
            "proprio_dim": 1,
            "command_dim": 1,
            "explicit_dim": 1,
            "implicit_dim": 1,
            "num_actions": 1,
        },
    )
    st.initial_state = MoELocoActorCritic(TINY).initial_state(6)
    for _ in range(3):
        st.add(values=torch.zeros(6))
    seen = [mb.envs for mb in st.minibatches(3, 2, torch.Generator().manual_seed(0))]
    assert len(seen) == 6
    for epoch in (seen[:3], seen[3:]):
        assert sorted(torch.cat(epoch).tolist()) == list(range(6))


# ------------------------------------------------------------------ configs
def test_packaged_configs_load_and_inherit():
    base = load_train_config("train")
    assert [(n, s.kind, k) for n, s, k in base.schedule()] == [
        ("plane", "oracle", 40000),
        ("terrain", "oracle", 80000),
        ("pas", "pas", 10000),
    ]
    assert set(base.stages["plane"].env["terrain.tasks"]) == {"plane_q", "standup_b", "walk_b"}
    scaled = load_train_config("train", {"iteration_scale": 0.01})
    assert [k for _, _, k in scaled.schedule()] == [400, 800, 100]
    ci = load_train_config("train_ci")
    assert [n for n, _, _ in ci.schedule()] == ["plane"]
    # the child's stage env replaced the parent's task set instead of merging into it
    assert list(ci.stages["plane"].env["terrain.tasks"]) == ["plane_q"]
    assert ci.algorithm.gamma == base.algorithm.gamma  # inherited
    walk = load_train_config("train_walk")
    assert walk.model_preset == "cpu" and base.model_preset == "paper"
    assert (
        walk.model_config().actor_rnn_hidden == 64 and base.model_config().actor_rnn_hidden == 256
    )
    assert [n for n, _, _ in walk.schedule()] == ["plane", "pas"]
    for stage in ("plane", "pas"):
        assert list(walk.stages[stage].env["terrain.tasks"]) == ["plane_q"]
    with pytest.raises(TrainConfigError, match="model_preset"):
        load_train_config("train", {"model_preset": "tiny"})


def test_wo_moe_baseline_is_a_config_switch_with_matched_parameters():
    cfg = load_train_config("train_wo_moe")
    mc = cfg.model_config()
    assert mc.head == "mlp" and mc.mixture_size == 1
    assert mc.standard_head_hidden == matched_standard_head(ModelConfig())
    assert cfg.schedule() == load_train_config("train").schedule()


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(TrainConfigError, match=r"algorithm\.gama: unknown key"):
        load_train_config("train", {"algorithm.gama": 0.9})
    with pytest.raises(TrainConfigError, match=r"stages\.pas\.kind must be one of"):
        load_train_config("train", {"stages.pas.kind": "student"})
    with pytest.raises(TrainConfigError, match=r"runner\.num_steps_per_env: expected an integer"):
        load_train_config("train", {"runner.num_steps_per_env": "24"})
    with pytest.raises(TrainConfigError, match="model: unknown ModelConfig fields"):
        load_train_config("train", {"model.experts": 4})
    bad = tmp_path / "bad.yaml"
    bad.write_text("inherit: train.yaml\nfoo: 1\n")
    with pytest.raises(TrainConfigError, match="foo: unknown key"):
        load_train_config(bad)
    assert merge({"env": {"a.b": {"x": 1}}}, {"env": {"a.b": {"y": 2}}}) == {
        "env": {"a.b": {"y": 2}}
    }
