"""Training in the real MuJoCo environment: it learns, it resumes exactly, the CLI runs, logs and
exports (``config/train_ci.yaml``: 8 robots standing on the plane, a small network)."""

from __future__ import annotations

import pytest
import torch

from moe_loco_training.env import vec_env
from moe_loco_training.export import load_checkpoint
from moe_loco_training.export import main as export_main
from moe_loco_training.train.cli import main as train_main
from moe_loco_training.train.config import TrainConfigError, load_train_config
from moe_loco_training.train.runner import Trainer, env_config_for_stage, evaluate_policy

STAND = {
    "terrain.tasks": {"plane_q": {"kind": "plane", "gait": "quadrupedal", "stand_still": True}}
}
"""Standing still: an easy task for the runs that only need the loop to run."""


def test_short_training_improves_mean_reward_over_the_untrained_policy():
    """20 PPO iterations (8 robots x 32 steps each) commanded forward at 0.5 m/s; the trained
    policy is evaluated against the untrained one (the same initialisation) under the same seeds,
    with its exploration noise (std 1.0 at the start: the noise costs tracking and stability)."""
    cfg = load_train_config("train_ci", {"runner.progress": False})
    trainer = Trainer(cfg, out=None)
    eval_env = env_config_for_stage(cfg, 0).replace(seed=1000)
    before = evaluate_policy(trainer.model, eval_env, 200, seed=7)
    trainer.run()
    trainer.close()
    after = evaluate_policy(trainer.model, eval_env, 200, seed=7)
    print(
        f"mean reward per step: untrained {before['mean_reward']:.4f}, "
        f"trained {after['mean_reward']:.4f}"
    )
    # measured: 0.0394 -> 0.0578 (seed 0), 0.0382 -> 0.0510 (seed 1); standing still, which the
    # recipe's rewards make easy (an untrained mean action earns 0.21 of 0.21), showed nothing
    assert after["mean_reward"] > before["mean_reward"] + 0.008
    assert trainer.iteration == 20
    assert trainer.history[-1].update.recon > 0


def test_resume_reproduces_the_next_iteration_exactly(tmp_path, monkeypatch):
    """Checkpoint in the middle of a PAS stage (after an oracle stage); the resumed run's next
    iteration equals the uninterrupted run's bit for bit: weights, optimiser, statistics, PAS."""
    cfg = load_train_config(
        "train_ci",
        {
            "stages.plane.iterations": 1,
            "stages.pas.enabled": True,
            "stages.pas.iterations": 3,
            "stages.pas.env": STAND,
            "pas.alpha": 0.98,
            "runner.progress": False,
            # 15-step episodes: robots are reset (and re-randomised) before the checkpoint
            "env.episode_length_s": 0.3,
        },
    )
    a = Trainer(cfg, out=None)
    a.run(2)
    a.save(tmp_path / "ckpt.pt")
    nxt = a.run(1)[0]
    b = Trainer.resume(tmp_path / "ckpt.pt", out=None)
    assert b.iteration == 2 and b.pas.steps == 32
    res = b.run(1)[0]
    assert nxt.kind == res.kind == "pas" and 0 < res.pas_probability < 1
    assert res.mean_reward == nxt.mean_reward
    assert res.update == nxt.update
    assert res.per_task == nxt.per_task
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    oa, ob = a.ppo.optimizer.state_dict()["state"], b.ppo.optimizer.state_dict()["state"]
    assert all(torch.equal(oa[i]["exp_avg_sq"], ob[i]["exp_avg_sq"]) for i in oa)
    assert a.ppo.learning_rate == b.ppo.learning_rate
    assert a.pas.steps == b.pas.steps == 64
    assert torch.equal(a.obs.proprio, b.obs.proprio)
    assert torch.equal(a.generator.get_state(), b.generator.get_state())
    # a resume that leaves the robots' randomised models as a fresh environment drew them
    # diverges: the comparison above can tell
    monkeypatch.setattr(vec_env, "MODEL_FIELDS", ())
    c = Trainer.resume(tmp_path / "ckpt.pt", out=None)
    assert c.run(1)[0].mean_reward != nxt.mean_reward
    for t in (a, b, c):
        t.close()


def test_a_resume_that_changes_the_pas_length_anneals_at_the_new_rate(tmp_path):
    """P_t's rate follows the resumed run's schedule: with the checkpoint's own config it is
    the same number; with the PAS stage shortened it is faster, so P_t still reaches 0 at the
    stage's end (the checkpoint's rate left v1's PAS at P = 0.006)."""
    over = {
        "stages.plane.iterations": 1,
        "stages.pas.enabled": True,
        "stages.pas.iterations": 6,
        "stages.pas.env": STAND,
        "runner.progress": False,
    }
    cfg = load_train_config("train_ci", over)
    a = Trainer(cfg, out=None)
    a.run(2)
    a.save(tmp_path / "ckpt.pt")
    same = Trainer.resume(tmp_path / "ckpt.pt", out=None)
    assert same.pas.alpha == a.pas.alpha and same.pas.steps == a.pas.steps == 32
    short = load_train_config("train_ci", {**over, "stages.pas.iterations": 3})
    b = Trainer.resume(tmp_path / "ckpt.pt", config=short, out=None)
    assert b.pas.alpha == short.pas_alpha() < a.pas.alpha and b.pas.steps == 32
    b.run()
    assert b.pas.probability() == 0.0 and b.provenance().stage == "stage2"
    for t in (a, same, b):
        t.close()


def test_cli_trains_logs_checkpoints_resumes_and_exports(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--config", "train_ci", "--run-dir", str(run), "--seed", "3"]
    common = ["--set", "stages.plane.iterations=3", "--set", "runner.tensorboard=true"]
    assert train_main([*args, *common, "--set", "runner.export=true", "--iterations", "2"]) == 0
    ckpt = run / "checkpoints" / "ckpt_000002.pt"
    assert ckpt.is_file() and (run / "config.json").is_file()
    assert not (run / "policy.onnx").exists()  # the schedule is not finished yet
    err = capsys.readouterr().err
    assert "it 2/3" in err and "samples/s" in err
    # the checkpoint is an exporter checkpoint
    exp = load_checkpoint(ckpt)
    assert exp.provenance.iterations == 2 and exp.provenance.seed == 3
    assert export_main(["--checkpoint", str(ckpt), "-o", str(tmp_path / "p.onnx")]) == 0
    # resume (its own config, one key overridden) to the end: the run exports its policy
    resume = ["--resume", str(ckpt), "--quiet", "--set", "stages.plane.iterations=4"]
    assert train_main(resume) == 0
    assert (run / "policy.onnx").is_file() and (run / "checkpoints" / "ckpt_000004.pt").is_file()
    from moe_loco_controller.core.policy import PolicyRuntime

    rt = PolicyRuntime(run / "policy.onnx")
    assert rt.metadata.training["iterations"] == 4
    assert rt.metadata.training["seed"] == 3
    assert rt.metadata.training["stage"] == "stage1"
    # TensorBoard: reward terms, episode length, curriculum, gate entropy / expert usage per task
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in (
        "train/mean_reward_per_step",
        "reward/quadrupedal/alive",
        "curriculum/plane_q",
        "gate/plane_q/gate_entropy",
        "gate/plane_q/expert_0",
        "loss/recon",
        "perf/samples_per_s",
    ):
        assert tag in tags, tag
    steps = [e.step for e in acc.Scalars("train/mean_reward_per_step")]
    assert steps == [1, 2, 3, 4]
    # bad configuration: exit 2 with the field named
    assert train_main(["--config", "train_ci", "--set", "algorithm.gama=1"]) == 2
    assert "algorithm.gama" in capsys.readouterr().err


def test_init_copies_the_weights_of_a_checkpoint(tmp_path):
    """``--init``: a new run (e.g. stage 2 alone) starts from another run's weights."""
    cfg = load_train_config("train_ci")
    a = Trainer(cfg, out=None)
    with torch.no_grad():
        for p in a.model.parameters():
            p.add_(0.5)
    a.save(tmp_path / "oracle.pt")
    b = Trainer(load_train_config("train_ci", {"seed": 9}), out=None)
    assert not torch.equal(b.model.action_std, a.model.action_std)
    b.init_from(tmp_path / "oracle.pt")
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    other = Trainer(load_train_config("train_ci", {"model.num_experts": 2}), out=None)
    import pytest

    with pytest.raises(ValueError, match=r"model configuration differs .*num_experts"):
        other.init_from(tmp_path / "oracle.pt")
    # a new skill from converged weights: the std is reset, everything else is copied; a
    # different initial std in the model section does not stop the copy
    c = Trainer(
        load_train_config("train_ci", {"init_action_std": 0.3, "model.init_noise_std": 0.7}),
        out=None,
    )
    c.init_from(tmp_path / "oracle.pt")
    sc = c.model.state_dict()
    assert torch.all(c.model.action_std == 0.3)
    assert all(torch.equal(sa[k], sc[k]) for k in sa if k != "action_std")
    with pytest.raises(TrainConfigError, match="init_action_std"):
        load_train_config("train_ci", {"init_action_std": 0.0})


def test_wo_moe_baseline_trains_through_the_same_loop():
    """``model.head: mlp`` (the "w/o MoE" baseline): one head, no gate, same PPO and stages."""
    cfg = load_train_config(
        "train_ci",
        {"model.head": "mlp", "model.standard_head_hidden": [32, 16], "stages.plane.iterations": 1},
    )
    trainer = Trainer(cfg, out=None)
    assert trainer.model.gate is None
    s = trainer.run()[0]
    trainer.close()
    assert s.per_task["plane_q"]["expert_0"] == 1.0
    assert s.per_task["plane_q"]["gate_entropy"] == 0.0
    assert s.update.recon > 0 and s.update.value > 0


def test_a_resume_that_rebalances_the_task_shares_trains_on_from_fresh_episodes(tmp_path):
    """``--resume`` with other ``terrain.tasks.<task>.weight``: the robots follow the new
    shares (the env's rebalance), the trainer observes them afresh and trains on."""
    walk = {"kind": "plane", "gait": "quadrupedal"}
    stand = {"kind": "plane", "gait": "bipedal"}
    over = {"runner.progress": False, "stages.plane.iterations": 2}
    cfg = load_train_config(
        "train_ci", {**over, "stages.plane.env.terrain.tasks": {"plane_q": walk, "walk_b": stand}}
    )
    a = Trainer(cfg, out=None)
    a.run(1)
    a.save(tmp_path / "ckpt.pt")
    a.close()
    heavy = {"plane_q": {**walk, "weight": 3.0}, "walk_b": stand}
    new = load_train_config("train_ci", {**over, "stages.plane.env.terrain.tasks": heavy})
    b = Trainer.resume(tmp_path / "ckpt.pt", config=new, out=None)
    assert b.iteration == 1
    walk_id = b.env.task_names.index("plane_q")
    assert int((b.env.task == walk_id).sum()) == 6  # 8 robots, 3:1
    assert torch.equal(b.task_ids, torch.as_tensor(b.env.task))
    assert torch.equal(b.obs.command, b.env.observe().command)  # observed after the reset
    res = b.run(1)[0]
    assert b.iteration == 2 and set(res.per_task) <= {"plane_q", "walk_b"}
    b.close()


def test_a_generator_state_of_another_device_kind_gives_way_to_a_derived_seed():
    """CPU and CUDA generators keep states of different sizes: a checkpoint's state of the
    other kind (a CPU campaign resumed on a GPU) reseeds from (seed, iteration), the same seed
    for the same point; a state of the right size that is corrupt is an error, not a reseed."""
    cfg = load_train_config("train_ci", {"runner.progress": False})
    t = Trainer(cfg, out=None)
    other_kind = torch.zeros(16, dtype=torch.uint8)  # a CUDA Philox state's size
    t.iteration = 7
    t._restore_generator(other_kind)
    first = torch.rand(4, generator=t.generator)
    t._restore_generator(other_kind)
    assert torch.equal(torch.rand(4, generator=t.generator), first)
    t.iteration = 8
    t._restore_generator(other_kind)
    assert not torch.equal(torch.rand(4, generator=t.generator), first)
    good = t.generator.get_state()
    t._restore_generator(good)
    assert torch.equal(t.generator.get_state(), good)
    with pytest.raises(RuntimeError):
        t._restore_generator(torch.zeros_like(good))
