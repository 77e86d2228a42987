"""moe-loco-analyze adapt (Fig. 10): one expert more, the original actor frozen, three legs.

A train_ci checkpoint (3 experts, 8 robots), two adaptation iterations, in-process."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_training.analysis import adaptation as ad
from moe_loco_training.analysis.cli import main
from moe_loco_training.env import rewards as rw
from moe_loco_training.env.config import RewardConfig
from moe_loco_training.train.config import load_train_config
from moe_loco_training.train.runner import Trainer

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    t = Trainer(load_train_config("train_ci", {"stages.plane.iterations": 1}), out=None)
    try:
        t.run()
        return t.save(tmp_path_factory.mktemp("adapt") / "ci.pt")
    finally:
        t.close()


def test_add_expert_keeps_the_policy_and_adds_a_small_gate_share(checkpoint):
    trainer, original, n = ad.adaptation_trainer(checkpoint, 1, 4, action_std=None, gate_bias=-2.0)
    try:
        model = trainer.model
        assert model.config.num_experts == n + 1 == 4
        h = torch.randn(5, original.config.actor_rnn_hidden)
        probs_old, probs_new = original.gate(h), model.gate(h)
        # the original experts keep their relative gate; the new one starts at bias -2: small
        ratio = probs_new[:, :n] / probs_old
        assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-5)
        assert (probs_new[:, n] < 0.2).all()
        for name in ad.FROZEN_MODULES:
            a, b = getattr(original, name).state_dict(), getattr(model, name).state_dict()
            assert all(torch.equal(a[k], b[k]) for k in a)
        for w_old, w_new in zip(
            original.actor_heads.weights, model.actor_heads.weights, strict=True
        ):
            assert torch.equal(w_old, w_new[:n])
        with pytest.raises(ValueError, match="no MoE head"):
            mlp = Trainer(load_train_config("train_ci", {"model.head": "mlp"}), out=None)
            ad.add_expert(mlp.model)
    finally:
        trainer.close()


def test_three_legged_terms_read_only_the_held_up_leg():
    n = 3
    z = np.zeros((n, 12))
    s = rw.RewardInputs(
        command=np.zeros((n, 3)), lin_vel=np.zeros((n, 3)), yaw_rate=np.zeros(n),
        ang_vel_body=np.zeros((n, 3)), q=z.copy(), dq=z, ddq=z, q_default=np.zeros(12),
        q_min=np.full(12, -3.0), q_max=np.full(12, 3.0), torque_limit=np.full(12, 23.7),
        q_sub=np.zeros((n, 4, 12)), dq_sub=np.zeros((n, 4, 12)), tau_sub=np.zeros((n, 4, 12)),
        tau_des_sub=np.zeros((n, 4, 12)),
        foot_force_z=np.array([[0.0, 30, 30, 30], [30, 30, 30, 30], [30, 0.0, 30, 30]]),
        calf_force_z=np.zeros((n, 4)), link_force=np.zeros((n, 13, 3)), base_height=np.zeros(n),
        up_cos=np.zeros(n), base_up_z=np.ones(n), gait_time=np.zeros(n), action=z, last_action=z,
        terminated=np.zeros(n, bool), lifted_leg=np.array([0, 0, -1]),
    )  # fmt: skip
    cfg = RewardConfig()
    # robot 0 holds FR up and it is free; robot 1 holds FR up but it is on the ground; robot 2
    # holds nothing (its FL foot is free: not counted)
    np.testing.assert_array_equal(rw.lifted_foot_air(s, cfg), [1.0, 0.0, 0.0])
    s.q[0, 0:3] = rw.LIFTED_LEG_POSE
    pose = rw.lifted_leg_pose(s, cfg)
    assert pose[0] == 0.0 and pose[1] == pytest.approx(np.sum(rw.LIFTED_LEG_POSE**2))
    assert pose[2] == 0.0


def test_adapt_trains_only_the_gate_and_the_new_expert_and_exports_one_more(
    checkpoint, tmp_path, capsys
):
    out = tmp_path / "adapt"
    args = ["adapt", str(checkpoint), "--iterations", "2", "--num-envs", "8"]
    assert main([*args, "--eval-steps", "20", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "UNCHANGED" in text and "tripod_slope_q: after" in text
    result = json.loads((out / "adapt.json").read_text())
    assert result["frozen_unchanged"] and result["iterations"] == 2
    assert len(result["curves"]["lifted_foot_air"]) == 2
    assert (out / "adapt_curves.png").read_bytes()[:8] == PNG
    # the gate and the new expert did learn
    before = torch.load(str(checkpoint), weights_only=True)["model_state"]
    after = torch.load(str(out / "adapted.pt"), weights_only=True)["model_state"]
    assert not torch.equal(after["actor_heads.weights.0"][3], torch.zeros_like(after[
        "actor_heads.weights.0"][3]))  # fmt: skip
    assert not torch.equal(before["gate.net.0.weight"], after["gate.net.0.weight"])
    assert torch.equal(before["actor_heads.weights.0"], after["actor_heads.weights.0"][:3])
    assert torch.equal(before["actor_rnn.weight_hh_l0"], after["actor_rnn.weight_hh_l0"])
    # the same contract, one expert more: the runtime takes it
    runtime = PolicyRuntime(out / "adapted.onnx", device="cpu")
    assert runtime.num_experts == 4
    step = runtime.step(
        np.zeros(runtime.metadata.observation.proprio_dim, np.float32),
        np.zeros(runtime.metadata.observation.command_dim, np.float32),
    )
    assert step.gate.shape[-1] == 4 and np.isfinite(step.actions).all()


def test_adapt_refuses_bad_input(checkpoint, tmp_path, capsys):
    assert main(["adapt", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["adapt", str(checkpoint), "--iterations", "0", "--out", str(tmp_path / "o")]) == 2
    assert ">= 1" in capsys.readouterr().err
    bad = ["adapt", str(checkpoint), "--set", "env.num_envz=3", "--out", str(tmp_path / "o")]
    assert main(bad) == 2
    assert "num_envz" in capsys.readouterr().err
