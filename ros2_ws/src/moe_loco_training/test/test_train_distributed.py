"""Data-parallel training (``torchrun``, ``moe_loco_training.train.distributed``): two ranks on the
CPU with the gloo backend, on localhost only.

``moe-loco-train`` is launched as ``python -m torch.distributed.run --nproc_per_node=2`` (what
``torchrun`` runs) with ``$MOE_LOCO_RANK_DUMP`` set, so that every rank writes hashes of its
weights, optimiser and generator and its first rollout's statistics at the end of the run. Two
iterations of 4 robots x 8 steps, then a resume for two more.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from moe_loco_training.train import distributed
from moe_loco_training.train.config import load_train_config
from moe_loco_training.train.ppo import adapt_learning_rate
from moe_loco_training.train.runner import Trainer

OVERRIDES = {
    "env.num_envs": 4,
    "env.num_threads": 1,
    "torch_threads": 1,
    "stages.plane.iterations": 2,
    "runner.num_steps_per_env": 8,
    "runner.tensorboard": True,  # event files carry the writer's pid: which rank wrote them
}
TORCHRUN_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun(args: list[str], dump: Path, nproc: int = 2) -> str:
    """``moe-loco-train args`` on ``nproc`` local ranks; returns the combined output."""
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    env.update(
        {
            distributed.DUMP_ENV: str(dump),
            "GLOO_SOCKET_IFNAME": "lo",  # the loopback interface: no other address is used
            "OMP_NUM_THREADS": "1",
        }
    )
    for _ in range(3):  # another process may take the free port before torchrun binds it
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={nproc}",
            "--master_addr=127.0.0.1",
            f"--master_port={_free_port()}",
            "-m",
            "moe_loco_training.train.cli",
            *args,
        ]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        out = p.stdout + p.stderr
        if p.returncode == 0 or "address already in use" not in out.lower():
            break
    assert p.returncode == 0, out
    return out


def sets(overrides: dict) -> list[str]:
    return [a for k, v in overrides.items() for a in ("--set", f"{k}={json.dumps(v)}")]


def dumps(where: Path) -> list[dict]:
    return [json.loads((where / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-rank run of 2 iterations, then a 2-rank resume of its checkpoint to iteration 4."""
    tmp = tmp_path_factory.mktemp("ddp")
    run_dir = tmp / "run"
    first = torchrun(
        ["--config", "train_ci", *sets(OVERRIDES), "--run-dir", str(run_dir)], tmp / "dump1"
    )
    first_files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())
    ckpt = run_dir / "checkpoints" / "ckpt_000002.pt"
    resumed = torchrun(["--resume", str(ckpt), "--set", "stages.plane.iterations=4"], tmp / "dump2")
    return {
        "run_dir": run_dir,
        "first_out": first,
        "first_files": first_files,
        "first": dumps(tmp / "dump1"),
        "resumed_out": resumed,
        "resumed": dumps(tmp / "dump2"),
    }


def test_ranks_end_with_identical_weights(runs):
    """(a) gradients and KL averaged: bit-identical weights, optimiser state and learning rate."""
    r0, r1 = runs["first"]
    assert r0["world_size"] == r1["world_size"] == 2 and r0["iteration"] == r1["iteration"] == 2
    assert r0["params_sha256"] == r1["params_sha256"]
    assert r0["optimizer_sha256"] == r1["optimizer_sha256"]
    assert r0["learning_rate"] == r1["learning_rate"]
    assert r0["kl"] == r1["kl"] and len(r0["kl"]) == 2  # the KL the rate followed: the average
    assert r0["mean_rewards"] != r1["mean_rewards"]  # while the rollouts differ
    # and they trained: the weights are not the initial ones (the same on every rank)
    init = Trainer(load_train_config("train_ci", OVERRIDES), out=None)
    initial = distributed.tensor_digest(init.model.state_dict().values())
    init.close()
    assert r0["params_sha256"] != initial


def test_ranks_collect_different_data_and_rank0_is_the_single_process_run(runs):
    """(b) each rank its own seeds: different robots, actions and rewards; rank 0's are the
    configured seeds, so its first rollout is a single process's."""
    r0, r1 = runs["first"]
    a, b = r0["first_rollout"], r1["first_rollout"]
    assert a["iteration"] == b["iteration"] == 1
    assert a["env_seed"] == 0 and b["env_seed"] != 0
    assert a["proprio_sha256"] != b["proprio_sha256"]
    assert a["actions_sha256"] != b["actions_sha256"]
    assert a["mean_reward"] != b["mean_reward"]
    assert r0["generator_sha256"] != r1["generator_sha256"] and r0["env_rng"] != r1["env_rng"]
    single = Trainer(load_train_config("train_ci", OVERRIDES), out=None)
    try:
        assert single.run(1)[0].mean_reward == a["mean_reward"]
    finally:
        single.close()


def test_only_rank0_logs_and_writes(runs):
    """(c) one progress line per iteration, one TensorBoard writer (rank 0's pid), and the
    checkpoint holds rank 0's generator and environment."""
    out, run_dir = runs["first_out"], runs["run_dir"]
    r0, r1 = runs["first"]
    for it in (1, 2):
        assert len(re.findall(rf"\] it {it}/2 ", out)) == 1, out
    assert "over 2 ranks" in out
    assert out.count("moe-loco-train: finished at iteration 2/2") == 1
    files = runs["first_files"]
    events = [f for f in files if f.startswith("tb/")]
    assert len(events) == 1 and f".{r0['pid']}." in events[0], files
    assert set(files) - set(events) == {"config.json", "model.pt", "checkpoints/ckpt_000002.pt"}
    data = torch.load(
        str(run_dir / "checkpoints" / "ckpt_000002.pt"), map_location="cpu", weights_only=True
    )
    ts = data["training_state"]
    gen = distributed.tensor_digest([ts["generator"]])
    assert gen == r0["generator_sha256"] != r1["generator_sha256"]
    assert str(ts["env"]["rng"]) == r0["env_rng"]
    assert distributed.tensor_digest(data["model_state"].values()) == r0["params_sha256"]
    assert data["provenance"]["extra"]["ranks"] == 2


def test_resume_on_two_ranks_trains_on_with_identical_weights(runs):
    """(d) both ranks load the checkpoint, rank 0 continues its robots, rank 1 starts fresh ones
    (not its first run's seeds); they end identical again, and only rank 0 wrote."""
    r0, r1 = runs["resumed"]
    assert r0["iteration"] == r1["iteration"] == 4
    assert r0["params_sha256"] == r1["params_sha256"] != runs["first"][0]["params_sha256"]
    assert r0["optimizer_sha256"] == r1["optimizer_sha256"]
    assert r0["learning_rate"] == r1["learning_rate"]
    a, b = r0["first_rollout"], r1["first_rollout"]
    assert a["iteration"] == b["iteration"] == 3
    assert a["proprio_sha256"] != b["proprio_sha256"]
    assert a["env_seed"] == 0
    assert b["env_seed"] not in (0, runs["first"][1]["first_rollout"]["env_seed"])
    out = runs["resumed_out"]
    assert "from iteration 2 on 2 ranks" in out
    for it in (3, 4):
        assert len(re.findall(rf"\] it {it}/4 ", out)) == 1, out
    run_dir = runs["run_dir"]
    assert (run_dir / "checkpoints" / "ckpt_000004.pt").is_file()
    events = sorted((run_dir / "tb").iterdir())
    assert len(events) == 2 and sum(f".{r0['pid']}." in e.name for e in events) == 1


def test_the_learning_rate_follows_the_kl_averaged_over_the_ranks(monkeypatch):
    """PPO adapts the rate to the KL that the all-reduce returns, not to its own: with the ranks'
    average far above the target, the rate falls at every minibatch, where this rank's own KL
    would have led elsewhere."""
    cfg = load_train_config("train_ci", {**OVERRIDES, "runner.tensorboard": False})
    trainer = Trainer(cfg, out=None)
    try:
        trainer._enter_stage(0)
        trainer.collect()
        seen: list[float] = []

        def fake_average(parameters, ctx, *scalars):
            seen.extend(float(s) for s in scalars)
            return [100.0 * cfg.algorithm.desired_kl for _ in scalars]

        monkeypatch.setattr(distributed, "average_gradients", fake_average)
        lr = trainer.ppo.learning_rate
        stats = trainer.ppo.update(trainer.storage, trainer.generator)
    finally:
        trainer.close()
    steps = cfg.algorithm.num_learning_epochs * cfg.algorithm.num_mini_batches
    assert len(seen) == steps  # one all-reduce per minibatch, its own KL in it
    assert stats.learning_rate == pytest.approx(max(cfg.algorithm.lr_min, lr / 1.5**steps))
    a = cfg.algorithm
    own = lr
    for kl in seen:  # the rate its own KL would have given (its first minibatch: KL ~ 0, x1.5)
        own = adapt_learning_rate(own, kl, a.desired_kl, a.lr_min, a.lr_max)
    assert own != pytest.approx(stats.learning_rate)
    assert stats.kl == pytest.approx(100.0 * cfg.algorithm.desired_kl)


def _helpers_rank(rank: int, port: int, results) -> None:
    """One rank of :func:`test_the_collectives_on_two_ranks` (a forked child)."""
    os.environ.update(
        {"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)},
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        GLOO_SOCKET_IFNAME="lo",
    )
    try:
        ctx = distributed.init()
        torch.manual_seed(rank)  # a different module on every rank
        m = torch.nn.Linear(3, 2)
        distributed.broadcast_module(m, ctx)
        for i, p in enumerate(m.parameters()):
            p.grad = torch.full_like(p, float(rank + 1)) if i == 0 else None
        (avg,) = distributed.average_gradients(m.parameters(), ctx, torch.tensor(10.0 * rank))
        try:
            distributed.check_same("the rank", str(rank), ctx)
            refused = None
        except RuntimeError as e:
            refused = str(e)
        results.put(
            {
                "rank": rank,
                "ctx": (ctx.rank, ctx.world_size, ctx.backend, ctx.is_main),
                "weights": distributed.tensor_digest(m.state_dict().values()),
                "grads": [p.grad.flatten().tolist() for p in m.parameters()],
                "avg": avg,
                "obj": distributed.broadcast_object(f"from rank {rank}", ctx),
                "refused": refused,
            }
        )
        distributed.shutdown()
    except BaseException as e:  # the parent reports it
        results.put({"rank": rank, "error": repr(e)})


def test_the_collectives_on_two_ranks():
    """The helpers on their own, 2 gloo ranks (forked: no second torch import): rank 0's
    weights reach rank 1, gradients and the KL slot are averaged (a missing gradient as zeros),
    rank 0's object reaches every rank, and ranks that disagree are refused on every rank."""
    mp = multiprocessing.get_context("fork")
    results = mp.Queue()
    port = _free_port()
    procs = [mp.Process(target=_helpers_rank, args=(r, port, results)) for r in (0, 1)]
    for p in procs:
        p.start()
    try:
        got = sorted((results.get(timeout=120) for _ in procs), key=lambda d: d["rank"])
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all("error" not in d for d in got), got
    r0, r1 = got
    assert r0["ctx"] == (0, 2, "gloo", True) and r1["ctx"] == (1, 2, "gloo", False)
    torch.manual_seed(0)
    rank0 = distributed.tensor_digest(torch.nn.Linear(3, 2).state_dict().values())
    assert r0["weights"] == r1["weights"] == rank0
    assert r0["grads"] == r1["grads"] == [[1.5] * 6, [0.0] * 2]
    assert r0["avg"] == r1["avg"] == 5.0
    assert r0["obj"] == r1["obj"] == "from rank 0"
    assert r0["refused"] == r1["refused"] and "ranks [1] differ from rank 0" in r0["refused"]


def test_rank_seeds():
    """Rank 0 keeps the configured seed; other ranks and resumes get distinct ones."""
    assert distributed.rank_seed(7, 0) == 7 and distributed.rank_seed(7, 0, 100) == 7
    seeds = {distributed.rank_seed(s, r, i) for s in (0, 1) for r in (1, 2, 3) for i in (0, 5)}
    assert len(seeds) == 12 and all(0 <= s < 2**32 for s in seeds)
    assert distributed.rank_seed(-1, 1) == distributed.rank_seed(-1, 1)


def test_one_process_makes_no_group():
    """Without torchrun the helpers do nothing: the single-process run is untouched."""
    ctx = distributed.init()
    assert ctx == distributed.SINGLE and not ctx.enabled and ctx.is_main
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.full((3,), 2.0)
    assert distributed.average_gradients([p], ctx, torch.tensor(0.5)) == [0.5]
    assert torch.equal(p.grad, torch.full((3,), 2.0))
    assert distributed.broadcast_object("x", ctx) == "x"
    distributed.check_same("anything", "mine", ctx)
    assert distributed.backend_for("cpu") == "gloo" and distributed.backend_for("cuda:1") == "nccl"


def test_where_a_run_trains_and_which_process_group_it_joins(tmp_path):
    """The C backend and Warp's CPU device train on the CPU (gloo); Warp on CUDA trains on the
    GPU, one per rank (nccl), before any process group or GPU is touched."""
    from moe_loco_training.env import load_env_config
    from moe_loco_training.train.cli import _device_of, _parser
    from moe_loco_training.train.runner import training_device

    single = distributed.SINGLE
    two = distributed.DistContext(rank=1, world_size=2, local_rank=1, backend="nccl")
    env = load_env_config()
    assert training_device(env, single) == torch.device("cpu")
    assert training_device(env, two) == torch.device("cpu")
    warp = env.replace(backend="warp")
    assert training_device(warp, single) == torch.device("cpu")
    assert training_device(warp.replace(warp_device="cuda"), single) == torch.device("cuda", 0)
    assert training_device(warp.replace(warp_device="cuda:2"), single) == torch.device("cuda", 2)
    assert training_device(warp.replace(warp_device="cuda"), two) == torch.device("cuda", 1)

    def device(*argv: str) -> str:
        return _device_of(_parser().parse_args(list(argv)))

    assert device("--config", "train_ci") == "cpu"
    assert device("--config", "train_ci", "--set", "env.backend=warp") == "cpu"
    cuda = ("--set", "env.backend=warp", "--set", "env.warp_device=cuda")
    assert device("--config", "train_ci", *cuda) == "cuda"
    # a configuration that does not load: the CPU here, and _main reports the real error
    assert device("--config", str(tmp_path / "missing.yaml")) == "cpu"
    # a resume reads the device from the checkpoint's configuration (with the overrides)
    trainer = Trainer(load_train_config("train_ci", OVERRIDES), run_dir=tmp_path, out=None)
    try:
        trainer.run(1)
    finally:
        trainer.close()
    assert device("--resume", str(tmp_path / "model.pt")) == "cpu"
    assert device("--resume", str(tmp_path / "model.pt"), *cuda) == "cuda"
