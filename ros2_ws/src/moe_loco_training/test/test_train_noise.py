"""Temporally correlated exploration (``algorithm.noise_correlation``): the rollout's unit noise
is an AR(1) process with unit variance, fresh at each episode start, and a resume continues it
exactly (``config/train_ci.yaml``: 8 robots, 32 steps an iteration)."""

from __future__ import annotations

import pytest
import torch

from moe_loco_training.train.config import TrainConfigError, load_train_config
from moe_loco_training.train.runner import Trainer


def _trainer(corr: float, episode_s: float = 20.0) -> Trainer:
    cfg = load_train_config(
        "train_ci",
        {
            "algorithm.noise_correlation": corr,
            "runner.progress": False,
            "env.episode_length_s": episode_s,
        },
    )
    return Trainer(cfg, out=None)


def _unit_noise(t: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, N, A) unit noise of the last rollout and its (T, N) dones."""
    d = t.storage.data
    return (d["actions"] - d["mu"]) / d["sigma"], d["dones"].bool()


def _lag1(eps: torch.Tensor, keep: torch.Tensor) -> float:
    """Lag-1 correlation of the noise over the step pairs ``keep`` (T-1, N) selects."""
    a, b = eps[:-1][keep], eps[1:][keep]
    return float((a * b).mean() / (a.std() * b.std()))


@pytest.mark.parametrize("corr", [0.0, 0.9])
def test_the_noise_has_unit_variance_and_the_configured_lag_one_correlation(corr):
    t = _trainer(corr)
    t.run(2)
    eps, dones = _unit_noise(t)
    t.close()
    keep = ~dones[:-1]  # pairs within one episode (20 s episodes: only falls reset)
    assert keep.float().mean() > 0.9
    assert float(eps.std()) == pytest.approx(1.0, abs=0.1)
    assert _lag1(eps, keep) == pytest.approx(corr, abs=0.08)


def test_a_new_episode_draws_fresh_noise():
    t = _trainer(0.95, episode_s=0.2)  # 10-step episodes: three resets in each 32-step rollout
    t.run(2)
    eps, dones = _unit_noise(t)
    t.close()
    within, across = ~dones[:-1], dones[:-1]
    assert across.sum() >= 16
    assert _lag1(eps, within) > 0.85
    assert abs(_lag1(eps, across)) < 0.2  # the step after a reset is a fresh draw


def test_a_resume_continues_the_correlated_noise_exactly(tmp_path):
    a = _trainer(0.9)
    a.run(2)
    a.save(tmp_path / "ckpt.pt")
    nxt = a.run(1)[0]
    b = Trainer.resume(tmp_path / "ckpt.pt", out=None)
    res = b.run(1)[0]
    assert res.mean_reward == nxt.mean_reward and res.update == nxt.update
    assert torch.equal(a.storage.data["actions"], b.storage.data["actions"])
    assert a.noise is not None and torch.equal(a.noise, b.noise)
    # the resumed noise matters: restarting it from fresh draws gives other actions
    c = Trainer.resume(tmp_path / "ckpt.pt", out=None)
    c.noise_fresh[:] = True
    c.run(1)
    assert not torch.equal(a.storage.data["actions"], c.storage.data["actions"])
    for t in (a, b, c):
        t.close()


def test_a_correlation_outside_zero_to_one_is_refused():
    for bad in (1.0, -0.1):
        with pytest.raises(TrainConfigError, match="noise_correlation"):
            load_train_config("train_ci", {"algorithm.noise_correlation": bad})
