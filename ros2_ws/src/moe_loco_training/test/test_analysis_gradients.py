"""moe-loco-analyze gradients: per-task surrogate gradients and their conflict (Tables III/IV).

Small checkpoints trained here (``train_ci``, two plane tasks, one iteration; the MoE model and
the w/o-MoE baseline), one torch thread."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from moe_loco_training.analysis import gradient_conflict as gc
from moe_loco_training.analysis.checkpoints import CheckpointError, trainer_from_checkpoint
from moe_loco_training.analysis.cli import main
from moe_loco_training.train.config import load_train_config
from moe_loco_training.train.runner import Trainer

TASKS = {
    "plane_q": {"kind": "plane", "gait": "quadrupedal"},
    "walk_b": {"kind": "plane", "gait": "bipedal"},
}


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _checkpoint(path, **model):
    cfg = load_train_config(
        "train_ci",
        {
            "runner.progress": False,
            "runner.num_steps_per_env": 16,
            "stages.plane.iterations": 1,
            "stages.plane.env": {"terrain.tasks": TASKS, "commands.zero_prob": 0.0},
            **{f"model.{k}": v for k, v in model.items()},
        },
    )
    t = Trainer(cfg, out=None)
    t.run()
    t.save(path)
    t.close()
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("grad")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {
            "moe": _checkpoint(d / "moe.pt"),
            "mlp": _checkpoint(d / "mlp.pt", head="mlp", standard_head_hidden=[32, 16]),
        }
    finally:
        torch.set_num_threads(n)


def test_identical_gradients_agree_and_opposite_ones_conflict_fully():
    a = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    assert gc.cosine_similarity(a, a) == pytest.approx(1.0)
    assert gc.negative_entry_ratio(a, a) == 0.0
    assert gc.cosine_similarity(a, -a) == pytest.approx(-1.0)
    assert gc.negative_entry_ratio(a, -a) == 1.0
    assert gc.cosine_similarity(a, 2.5 * a) == pytest.approx(1.0)  # scale does not matter
    b = torch.tensor([1.0, 2.0, 0.0, -3.0], dtype=torch.float64)  # 2 of 4 signs flip, one zero
    assert gc.negative_entry_ratio(a, b) == 0.5
    assert gc.cosine_similarity(a, b) == pytest.approx(float(a @ b) / float(a.norm() * b.norm()))
    assert math.isnan(gc.cosine_similarity(a, torch.zeros(4, dtype=torch.float64)))
    with pytest.raises(ValueError, match="one shape"):
        gc.negative_entry_ratio(a, a[:3])
    cos, neg = gc.conflict_matrices([a, -a, b], [(a, a), None, (b, -b)])
    np.testing.assert_allclose(cos, cos.T)
    assert cos[0, 1] == pytest.approx(-1.0) and neg[0, 1] == 1.0
    assert cos[0, 0] == pytest.approx(1.0) and neg[0, 0] == 0.0  # halves that agree
    assert math.isnan(cos[1, 1])  # no halves
    assert cos[2, 2] == pytest.approx(-1.0) and neg[2, 2] == 0.75  # the zero entry: no conflict


def test_task_gradients_add_up_to_the_whole_rollouts_and_cover_every_surrogate_parameter(
    checkpoints,
):
    trainer = trainer_from_checkpoint(checkpoints["moe"])
    seen = {}

    def check():
        g = gc.per_task_gradients(trainer)
        seen["tasks"] = g.tasks
        n = trainer.env.num_envs
        storage, ppo = trainer.storage, trainer.ppo
        everyone = torch.arange(n)
        params = [p for _, p in gc.policy_parameters(trainer.model)]
        whole = gc.surrogate_gradient(ppo, storage, everyone, params)
        mixed = sum(k / n * x for k, x in zip(g.robots, g.full, strict=True))
        tol = 1e-5 * float(whole.abs().max())  # float32 sums in another order
        torch.testing.assert_close(mixed, whole, rtol=1e-5, atol=tol)
        # a task's gradient is its halves' robots-weighted mean, computed directly too
        t0 = torch.nonzero(trainer.task_ids == 0).flatten()
        torch.testing.assert_close(
            g.full[0], gc.surrogate_gradient(ppo, storage, t0, params), rtol=1e-5, atol=tol
        )
        # every parameter the surrogate reaches is a policy parameter, and each part gets some
        loss = ppo.losses(storage.batch(everyone))["surrogate"]
        named = list(trainer.model.named_parameters())
        grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
        policy = {name for name, _ in gc.policy_parameters(trainer.model)}
        reached = {name for (name, _), x in zip(named, grads, strict=True) if x is not None}
        assert reached <= policy
        reached = {name for (name, _), x in zip(named, grads, strict=True)
                   if x is not None and bool(x.abs().sum() > 0)}  # fmt: skip
        assert {r.split(".")[0] for r in reached} == set(gc.POLICY_MODULES)

    trainer.train_iteration(after_collect=check)
    trainer.close()
    assert seen["tasks"] == ["plane_q", "walk_b"]


def test_measuring_leaves_training_as_it_was_and_frozen_leaves_the_weights(checkpoints):
    plain = trainer_from_checkpoint(checkpoints["moe"])
    plain.train_iteration()
    measured = trainer_from_checkpoint(checkpoints["moe"])
    r = gc.measure_gradient_conflict(measured, 1)
    for (k, a), b in zip(
        plain.model.state_dict().items(), measured.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k
    assert r.tasks == ["plane_q", "walk_b"] and r.robots == [4, 4] and r.iterations == 1
    assert r.samples == 8 * 16 and "0.00026 % of the paper's 4,096 x 24 x 500" in r.scale_note()
    frozen = trainer_from_checkpoint(checkpoints["moe"])
    before = {k: v.clone() for k, v in frozen.model.state_dict().items()}
    r = gc.measure_gradient_conflict(frozen, 2, frozen=True)
    assert all(torch.equal(before[k], v) for k, v in frozen.model.state_dict().items())
    assert frozen.iteration == 3  # the environment went on: two fresh rollouts
    for m in (r.cosine, r.cosine_per_iteration):
        assert np.all(np.abs(m) <= 1.0 + 1e-9)
    assert np.all((r.negative >= 0) & (r.negative <= 1))
    for t in (plain, measured, frozen):
        t.close()


def test_cli_writes_tables_iii_and_iv_for_moe_and_wo_moe_side_by_side(
    checkpoints, tmp_path, capsys
):
    out = tmp_path / "out"
    args = ["gradients", str(checkpoints["moe"]), str(checkpoints["mlp"]), "--iterations", "2"]
    assert main([*args, "--out", str(out)]) == 0
    md = (out / "gradients.md").read_text()
    assert md == capsys.readouterr().out.rstrip("\n") + "\n"
    assert "Table III" in md and "Table IV" in md
    assert "| MoE/w/o MoE | Walk (q) | Walk (b) |" in md  # the benchmark tables' names
    rows = list(csv.DictReader((out / "gradients.csv").open()))
    models = {r["model"] for r in rows}
    assert models == {"MoE", "w/o MoE"}
    # per model: 2 metrics x 2 averagings x 3 pairs (two diagonals, one off-diagonal)
    assert len(rows) == 2 * 2 * 2 * 3
    pair = [r for r in rows if r["task_a"] != r["task_b"]]
    for r in pair:
        v = float(r["value"])
        assert (-1 <= v <= 1) if r["metric"] == "cosine" else (0 <= v <= 1)
    # the Markdown cells are the CSV's numbers, MoE first
    cos = {r["model"]: float(r["value"]) for r in pair
           if r["metric"] == "cosine" and r["averaging"] == "mean_gradient"}  # fmt: skip
    assert "| Walk (q) | " in md and f"{cos['MoE']:.3f}/{cos['w/o MoE']:.3f}" in md


def test_bad_checkpoints_are_refused_with_the_reason(checkpoints, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    assert main(["gradients", str(text)]) == 2
    assert "notes.txt: not a torch checkpoint" in capsys.readouterr().err
    weights = tmp_path / "weights.pt"
    torch.save({"model_state": {}}, weights)
    assert main(["gradients", str(checkpoints["moe"]), str(weights)]) == 2
    assert "weights.pt: not a training checkpoint" in capsys.readouterr().err
    assert main(["gradients", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt: no such file" in capsys.readouterr().err
    assert main(["gradients", str(checkpoints["moe"]), "--iterations", "0"]) == 2
    assert main(["gradients", str(checkpoints["moe"]), "--set", "env.nm_envs=4"]) == 2
    assert "nm_envs" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="no such file"):
        trainer_from_checkpoint(tmp_path / "none.pt")


def test_overrides_start_a_fresh_environment_with_the_checkpoints_weights(checkpoints):
    t = trainer_from_checkpoint(checkpoints["moe"], {"env.num_envs": 6})
    exact = trainer_from_checkpoint(checkpoints["moe"])
    assert t.iteration == exact.iteration == 1
    for a, b in zip(t.model.state_dict().values(), exact.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    r = gc.measure_gradient_conflict(t, 1)
    assert sum(r.robots) == 6
    t.close()
    exact.close()


def test_a_saved_environment_that_no_longer_fits_is_reset_and_said_so(checkpoints, tmp_path):
    data = torch.load(checkpoints["moe"], weights_only=True)
    models = data["training_state"]["env"]["models"]
    name = next(iter(models))
    models[name] = models[name][..., :1]  # as if the environment's model had changed since
    old = tmp_path / "old.pt"
    torch.save(data, old)
    notes = []
    t = trainer_from_checkpoint(old, notes=notes)
    assert notes == [f"environment reset: the saved state does not fit (environment state does "
                     f"not fit: model field {name!r})"]  # fmt: skip
    assert t.iteration == 1 and t.env is None  # built fresh at the first iteration
    r = gc.measure_gradient_conflict(t, 1)
    assert r.tasks == ["plane_q", "walk_b"]
    t.close()
    notes = []
    trainer_from_checkpoint(checkpoints["moe"], notes=notes).close()
    assert notes == ["environment continued from the checkpoint's state"]
