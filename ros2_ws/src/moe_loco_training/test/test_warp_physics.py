"""The MuJoCo Warp backend against the C backend (issue 16): from the same states and controls,
1 s of simulated time on the plane and on every terrain kind; and the whole environment (same
seed, same actions) with ``env.backend: warp`` on the CPU device: observations, rewards, every
reward term and the dones agree within the stated tolerances.

Measured when written (Warp 1.19.0 CPU, float32; C MuJoCo float64): base positions within 0.4 mm
and joints within 5 mrad after 1 s. Tolerances: 5 mm, 0.05 rad; the reward and every term
within 5 % of the tracking term's per-step weight (0.0035 worst when written, with pushes).
A cold Warp kernel cache compiles for ~2 min (then ~/.cache/warp is reused)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moe_loco_training.env import MultitaskEnv, load_env_config
from moe_loco_training.env.arrays import HostRandomOnDevice
from moe_loco_training.env.config import EnvConfigError
from moe_loco_training.env.warp_physics import warp_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(warp_available() is not None, reason=str(warp_available())),
]

KINDS = ("plane_q", "bar_q", "pit_q", "baffle_q", "stair_q", "slope_q")
POS_TOL, JOINT_TOL = 5e-3, 0.05


def _config(**changes):
    base = load_env_config()
    tasks = {t: base.terrain.tasks[t] for t in KINDS}
    keys = ("kind", "gait", "easy", "hard", "count", "direction")
    plain = {t: {k: getattr(v, k) for k in keys} for t, v in tasks.items()}
    fixed = {
        "num_envs": len(KINDS),
        "num_threads": 1,
        "terrain.levels": 2,
        "terrain.init_max_level": 1,
        "terrain.tasks": plain,
        "randomization.enabled": False,
    }
    return base.replace(**{**fixed, **changes})  # fmt: skip


def _on_the_obstacle(env: MultitaskEnv) -> np.ndarray:
    """Each robot's x in its tile: on the highest bar, over the deepest pit, mid-stairs, etc."""
    tile = env.tiles.tile_index(env.task, env.level)
    xs = np.linspace(2.0, env.config.terrain.tile_length - 1.0, 400)
    out = np.full(env.num_envs, 3.5)
    for i, t in enumerate(tile):
        h = env.tiles.height(np.full(xs.size, t), xs)
        kind = env.task_names[env.task[i]]
        if kind in ("bar_q", "stair_q", "slope_q"):
            out[i] = xs[np.argmax(h)] - (0.0 if kind == "bar_q" else 0.3)
        elif kind == "pit_q":
            out[i] = xs[np.argmin(h)]
    return out


def test_warp_follows_the_c_physics_for_one_second_on_every_terrain_kind():
    from moe_loco_training.env.warp_physics import WarpPhysics

    with MultitaskEnv(_config()) as env:
        env.reset()
        tile = env.tiles.tile_index(env.task, env.level)
        x = _on_the_obstacle(env)
        s = env.state.copy()
        q0 = env._qpos0
        s[:, q0] = env.tiles.origins[tile, 0] + x
        s[:, q0 + 2] = env.tiles.height(tile, x) + env._spawn_z
        s[:, q0 + 3 : q0 + 7] = (1.0, 0.0, 0.0, 0.0)
        env.state[:] = s
        warp = WarpPhysics(env.model, env.num_envs)
        warp.set_state(s)
        c_traj, w_traj, c_sens, w_sens = [], [], [], []
        sub = env.substeps
        for k in range(50):  # 1 s
            t = (k * sub + np.arange(sub)) * env.config.timestep
            wave = 0.15 * np.sin(2 * np.pi * 1.5 * t)[None, :, None] * np.array([0, 1, 1] * 4)
            ctrl = np.repeat(env.default_q[None, None, :] + wave, env.num_envs, axis=0)
            env.physics_step(ctrl)
            c_traj.append(env._out_state.copy())
            c_sens.append(env._out_sens.copy())
            env.state[:] = env._out_state[:, -1]
            w_states, w_sensors = warp.rollout(torch.from_numpy(ctrl))
            w_traj.append(w_states.numpy())
            w_sens.append(w_sensors.numpy())
        c, w = np.concatenate(c_traj, 1), np.concatenate(w_traj, 1)
        feet = env.foot_adr.reshape(-1)
        fc = np.concatenate(c_sens, 1)[:, :, feet]
        fw = np.concatenate(w_sens, 1)[:, :, feet]
    for i in range(len(KINDS)):
        name = env.task_names[env.task[i]]
        dpos = np.abs(c[i, :, q0 : q0 + 3] - w[i, :, q0 : q0 + 3]).max()
        dq = np.abs(c[i][:, env._jq] - w[i][:, env._jq]).max()
        assert dpos < POS_TOL and dq < JOINT_TOL, (name, dpos, dq)
    # the feet's contact sensors (normal force > 1 N) agree at nearly every substep (0.963 when
    # written: the two solvers differ where a swinging foot grazes the ground)
    on_c, on_w = np.abs(fc[..., 0::3]) > 1.0, np.abs(fw[..., 0::3]) > 1.0
    assert (on_c == on_w).mean() > 0.95, (on_c == on_w).mean()
    # and the robots did move: the test compares motion, not two resting states
    assert np.abs(c[:, -1, q0 + 2] - c[:, 0, q0 + 2]).max() > 0.01


@pytest.mark.parametrize("randomised", [False, True])
def test_the_environment_gives_the_same_tensors_on_either_backend(randomised):
    """Same seed, same random draws, same actions: the one task code runs on numpy arrays for
    the C backend and on torch tensors for the Warp one. With randomisation each world gets its
    robot's model fields (friction, added mass and CoM, motor gains) and the pushes, latencies
    and noise."""
    changes = {"randomization.enabled": randomised, "randomization.push_interval_s": 0.4}
    c_env = MultitaskEnv(_config(**changes))
    w_env = MultitaskEnv(_config(backend="warp", **changes))
    # the C environment's random stream on the Warp one: the same draws, compared step by step
    w_env.rand = HostRandomOnDevice(w_env.rng, w_env.device)
    try:
        oc, ow = c_env.reset(), w_env.reset()
        np.testing.assert_array_equal(oc.proprio.numpy(), ow.proprio.numpy())
        rng = np.random.default_rng(1)
        worst = {}
        for _ in range(50):
            a = torch.from_numpy(rng.uniform(-0.5, 0.5, (len(KINDS), 12)).astype(np.float32))
            oc, ow = c_env.step(a), w_env.step(a)
            assert torch.equal(oc.done, ow.done)
            d = (oc.proprio - ow.proprio).abs().max().item()
            worst["proprio"] = max(worst.get("proprio", 0.0), d)
            worst["reward"] = max(
                worst.get("reward", 0.0), (oc.reward - ow.reward).abs().max().item()
            )
            for k, v in oc.infos["reward_terms"].items():
                diff = (v - ow.infos["reward_terms"][k]).abs().max().item()
                worst[k] = max(worst.get(k, 0.0), diff)
        scale = 7.0 * c_env.dt  # the largest term's per-step weight (quadrupedal tracking)
        bad = {k: v for k, v in worst.items() if k != "proprio" and v > 0.05 * scale}
        assert not bad, bad
        # scaled observations (joint velocities x 0.05): 0.056 when written, with pushes
        assert worst["proprio"] < 0.15, worst["proprio"]
    finally:
        c_env.close()
        w_env.close()


def _device_config(n: int = 24, **changes):
    """Every terrain kind, ``n`` robots, randomisation and pushes on: what a GPU run does."""
    return _config(backend="warp", num_envs=n, **{"randomization.enabled": True,
                   "randomization.push_interval_s": 0.1, **changes})  # fmt: skip


class _HostCopies:
    """Records, while active, every tensor -> host conversion (``numpy()``, ``cpu()``,
    ``tolist()``, ``__array__``: the size of what crossed) and every tensor made from host data
    (``torch.tensor`` / ``torch.as_tensor`` of anything but a tensor: an upload)."""

    NAMES = ("numpy", "cpu", "tolist", "__array__")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        self.uploads: list[str] = []
        self.active = False
        for name in self.NAMES:
            original = getattr(torch.Tensor, name)

            def spy(t, *a, _original=original, **k):
                if self.active:
                    self.sizes.append(t.numel())
                return _original(t, *a, **k)

            monkeypatch.setattr(torch.Tensor, name, spy)
        for name in ("tensor", "as_tensor"):
            made = getattr(torch, name)

            def upload(data, *a, _made=made, **k):
                if self.active and not isinstance(data, torch.Tensor):
                    self.uploads.append(repr(data)[:60])
                return _made(data, *a, **k)

            monkeypatch.setattr(torch, name, upload)


def test_the_warp_environment_keeps_its_arrays_on_its_device_between_resets(monkeypatch):
    """Issue 16, item 1: on the Warp backend the states, sensors, observations, rewards and
    dones stay torch tensors on the device; per step only one value per task (the curriculum
    means the trainer logs) reaches the host and nothing is uploaded, and at a reset the reset
    robots' indices go down."""
    env = MultitaskEnv(_device_config())
    try:
        assert env.device == env._warp.torch_device
        arrays = {k: v for k, v in vars(env).items() if isinstance(v, (np.ndarray, torch.Tensor))}
        on_host = sorted(k for k, v in arrays.items() if not isinstance(v, torch.Tensor))
        assert not on_host, on_host
        assert {v.device for v in arrays.values()} == {env.device}
        obs = env.reset()
        zero = torch.zeros(env.num_envs, 12, device=env.device)
        env.step(zero)  # the first step places the task code's constants on the device
        copies = _HostCopies(monkeypatch)
        copies.active = True
        pushed = 0
        for _ in range(25):  # standing still: nobody falls, nobody times out in 0.5 s
            pushed += int((env.push_timer - env.dt <= 0).sum())
            obs = env.step(zero)
            assert not obs.done.any()
        copies.active = False
        assert pushed > 0  # the pushes (device draws) happened inside the measured steps
        tasks = len(env.task_names)
        assert copies.sizes and max(copies.sizes) <= tasks < env.num_envs, copies.sizes
        assert not copies.uploads, copies.uploads  # and nothing went up from the host
        for t in (obs.proprio, obs.command, obs.reward, obs.done, obs.privileged_implicit):
            assert t.device == env.device
        for t in obs.infos["reward_terms"].values():
            assert t.device == env.device
        # a reset moves the reset robots' indices to the host (the C models' randomisation)
        copies.sizes.clear()
        copies.active = True
        env.reset_ids(torch.arange(3, device=env.device))
        copies.active = False
        assert max(copies.sizes) == 3, copies.sizes
    finally:
        env.close()


def test_a_warp_environment_resumes_bit_exactly():
    """``state_dict`` / ``load_state_dict`` on the Warp backend: the device generator, the
    arrays and the worlds' model fields come back, and the next steps are the same bits."""
    cfg = _device_config(n=8)
    a, b = MultitaskEnv(cfg), MultitaskEnv(cfg)
    try:
        a.reset()
        rng = np.random.default_rng(2)
        acts = [torch.from_numpy(rng.uniform(-1, 1, (8, 12)).astype(np.float32)) for _ in range(12)]
        for act in acts[:4]:
            a.step(act)
        state = a.state_dict()
        assert "device_rng" in state
        b.reset()
        assert not b.load_state_dict(state)
        for act in acts[4:]:
            oa, ob = a.step(act), b.step(act)
            for f in ("proprio", "privileged_implicit", "reward", "done", "command"):
                assert torch.equal(getattr(oa, f), getattr(ob, f)), f
        assert torch.equal(a.state, b.state)
    finally:
        a.close()
        b.close()


def test_no_tensor_of_the_warp_step_or_the_trainer_rollout_is_left_to_the_default_device():
    """With the default device set to ``meta``, a tensor created without an explicit device
    lands there and fails as soon as it meets the device's: this is how a forgotten
    ``device=`` (a tensor that would live on the host beside a GPU's) shows on a CPU machine."""
    from moe_loco_training.train.config import load_train_config
    from moe_loco_training.train.runner import Trainer

    overrides = {
        "env.backend": "warp",
        "env.num_envs": 12,
        "env.num_threads": 1,
        "env.randomization.push_interval_s": 0.1,
        "runner.num_steps_per_env": 6,
        "runner.progress": False,
        "runner.tensorboard": False,
        "runner.save_interval": 0,
        "runner.export": False,
        "algorithm.noise_correlation": 0.5,
    }
    trainer = Trainer(load_train_config("train_walk", overrides), out=None)
    try:
        trainer._enter_stage(0)
        torch.set_default_device("meta")
        try:
            stats = trainer.collect()
            trainer.env.reset_ids(torch.arange(5, device=trainer.device))  # a reset's path too
            obs = trainer.env.step(torch.zeros(12, 12, device=trainer.device))
        finally:
            torch.set_default_device(None)
        assert np.isfinite(stats["mean_reward"])
        assert obs.proprio.device == trainer.device
        assert trainer.storage.data["proprio"].device == trainer.device
        assert next(trainer.model.parameters()).device == trainer.device
        trainer.ppo.update(trainer.storage, trainer.generator)  # and it learns from it
    finally:
        trainer.close()


def test_a_c_backend_checkpoint_continues_on_the_warp_backend(tmp_path):
    """A CPU campaign moves to a GPU: the C backend's training state loads into the Warp
    backend (the same arrays and models; the device draws continue from a seed of the restored
    host generator), and training goes on there."""
    from moe_loco_training.train.config import load_train_config
    from moe_loco_training.train.runner import Trainer

    base = {
        "env.num_envs": 8,
        "env.num_threads": 1,
        "runner.num_steps_per_env": 4,
        "runner.progress": False,
        "runner.tensorboard": False,
        "runner.save_interval": 0,
        "runner.export": False,
    }
    cpu = Trainer(load_train_config("train_walk", base), run_dir=tmp_path, out=None)
    try:
        cpu.run(1)
    finally:
        cpu.close()
    ckpt = tmp_path / "model.pt"
    warp = Trainer.resume(
        ckpt, config=load_train_config("train_walk", {**base, "env.backend": "warp"}), out=None
    )
    try:
        assert warp.iteration == 1 and warp.env is not None and warp.env._warp is not None
        np.testing.assert_array_equal(warp.env.state.cpu().numpy(), _saved_env_state(ckpt))
        s = warp.train_iteration()
        assert s.iteration == 2 and np.isfinite(s.mean_reward)
    finally:
        warp.close()


def _saved_env_state(ckpt) -> np.ndarray:
    data = torch.load(str(ckpt), map_location="cpu", weights_only=True)
    return data["training_state"]["env"]["arrays"]["state"].numpy()


def test_warp_backend_settings_are_checked():
    with pytest.raises(EnvConfigError, match="backend must be"):
        load_env_config().replace(backend="isaacgym")
    with pytest.raises(EnvConfigError, match="warp_device"):
        load_env_config().replace(warp_device="tpu")


def test_bench_gpu_says_there_is_no_gpu_and_exits_0():
    import subprocess
    import sys
    from pathlib import Path

    import warp as wp

    if wp.get_cuda_device_count() > 0:
        pytest.skip("a GPU is here: bench_gpu.py would measure it (minutes)")
    script = Path(__file__).resolve().parents[4] / "benchmarks" / "bench_gpu.py"
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert "no CUDA GPU" in r.stdout
    assert lines[-1] == "gpu env_steps_per_s=nan samples_per_s=nan walk_min=nan"
