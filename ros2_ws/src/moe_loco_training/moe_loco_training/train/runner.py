"""The training loop: rollouts in the multitask environment, PPO updates, stages, checkpoints.

One iteration collects ``num_steps_per_env`` control steps of every robot (Algorithm 1/2, lines
3-14) and runs one PPO update on them (eq. 4). The stages of the configuration run in order; each
stage builds its environment (its task set may differ) and keeps the model, the optimiser and the
learning rate of the stage before it: stage 2's weights are stage 1's (Algorithm 2, line 1).

Everything random in training comes from one ``torch.Generator`` (action noise, minibatch order,
PAS draws) seeded by the configuration, the model's initialisation from the same seed, and the
environment from its own seeded generator. A checkpoint holds all of it (model, optimiser, learning
rate, PAS counter, generator, environment snapshot, current observations and recurrent states), so
a resumed run repeats the uninterrupted run's next iterations bit for bit. The checkpoint file is
also an exporter checkpoint (``moe-loco-export --checkpoint``).

Several ranks (``torchrun``, :mod:`.distributed`): each rank runs this loop on its own robots and
seeds (rank 0 the configured ones), PPO averages gradients and KL over the ranks, rank 0's weights
are broadcast before training, and rank 0 alone logs, checkpoints and exports. A checkpoint holds
rank 0's state; on ``--resume`` every rank loads its model, optimiser, learning rate and PAS
counter, rank 0 also its generator and environment (it continues exactly), and every other rank
starts a fresh environment and generator seeded by :func:`.distributed.rank_seed` with the resumed
iteration (robots reset, curriculum levels back at their start; a checkpoint of one rank could not
hold the others' robots, and the rank files it would need are not written).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import torch

from moe_loco_training.control import ControlConfig
from moe_loco_training.env import EnvConfig, EnvStep, MultitaskEnv, load_env_config
from moe_loco_training.export import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    TrainingProvenance,
    export_policy,
    git_revision,
)
from moe_loco_training.models import (
    ModelConfig,
    MoELocoActorCritic,
    Privileged,
    RecurrentState,
    on_cpu,
)
from moe_loco_training.observations import ObservationConfig
from moe_loco_training.train import distributed
from moe_loco_training.train.config import TrainConfig, from_dict
from moe_loco_training.train.pas import ProbabilityAnnealing
from moe_loco_training.train.ppo import PPO, UpdateStats, gaussian_log_prob
from moe_loco_training.train.storage import RolloutStorage

OBS_FIELDS = (
    "proprio",
    "privileged_explicit",
    "privileged_implicit",
    "command",
    "reward",
    "done",
    "time_out",
)
SIMULATOR = "mujoco (moe_loco_training.env.MultitaskEnv)"


@dataclass
class IterationStats:
    """What one iteration did (the numbers the logs and the progress line show)."""

    iteration: int
    stage: str
    kind: str
    pas_probability: float
    mean_reward: float
    """Mean per-step reward over the rollout (all robots)."""
    samples: int
    collect_s: float
    update_s: float
    update: UpdateStats
    action_std: float
    episodes: int
    mean_episode_return: float | None
    mean_episode_length_s: float | None
    per_task: dict[str, dict[str, float]] = field(default_factory=dict)
    reward_terms: dict[str, float] = field(default_factory=dict)
    curriculum: dict[str, float] = field(default_factory=dict)

    @property
    def samples_per_s(self) -> float:
        return self.samples / max(self.collect_s + self.update_s, 1e-9)


def env_config_for_stage(config: TrainConfig, stage_index: int) -> EnvConfig:
    """The environment of a stage: the env YAML, the top-level ``env`` overrides, the stage's.

    The environment's seed is the training seed plus the stage's index (unless an override sets
    ``seed``, which then gets the index added), so stages do not replay the same randomness.
    """
    base = load_env_config(config.env_config)
    _, stage, _ = config.schedule()[stage_index]
    changes = {**dict(config.env), **dict(stage.env)}
    changes["seed"] = int(changes.get("seed", config.seed)) + stage_index
    return base.replace(**changes)


def model_dims(model: ModelConfig) -> dict[str, int]:
    return {
        "proprio_dim": model.proprio_dim,
        "command_dim": model.command_dim,
        "explicit_dim": model.explicit_dim,
        "implicit_dim": model.implicit_dim,
        "num_actions": model.num_actions,
    }


def check_dims(model: ModelConfig, obs: EnvStep) -> None:
    for what, have, t in (
        ("proprio_dim", model.proprio_dim, obs.proprio),
        ("command_dim", model.command_dim, obs.command),
        ("explicit_dim", model.explicit_dim, obs.privileged_explicit),
        ("implicit_dim", model.implicit_dim, obs.privileged_implicit),
    ):
        if t.shape[-1] != have:
            raise ValueError(f"model {what} is {have}, the environment gives {t.shape[-1]}")


def training_device(env_config: EnvConfig, dist: distributed.DistContext) -> torch.device:
    """Where the model, the rollouts and the environment's arrays live: the CPU on the C
    backend; on the Warp backend its device (several ranks on CUDA: ``cuda:LOCAL_RANK`` each)."""
    if env_config.backend != "warp":
        return torch.device("cpu")
    device = torch.device(env_config.warp_device)
    if device.type == "cuda" and dist.enabled:
        return torch.device("cuda", dist.local_rank)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", 0)  # what Warp's "cuda" is, and what the env reports
    return device


class Trainer:
    """Runs the configured schedule; see the module docstring."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path | None = None,
        out: TextIO | Literal["stderr"] | None = "stderr",
        dist: distributed.DistContext | None = None,
    ) -> None:
        self.config = cfg = config
        # None: the process group this process joined (torchrun), else a single process
        self.dist = dist = dist if dist is not None else distributed.current()
        self.schedule = cfg.schedule()
        self.total_iterations = cfg.total_iterations
        self.device = dev = training_device(env_config_for_stage(cfg, 0), dist)
        self.generator = torch.Generator(device=dev)
        self.generator.manual_seed(distributed.rank_seed(cfg.seed, dist.rank))
        with torch.random.fork_rng(devices=[]):  # the same initial weights on every rank
            torch.manual_seed(cfg.seed)
            self.model = MoELocoActorCritic(cfg.model_config())
        self.model.to(dev)
        self.model.train()
        self.ppo = PPO(self.model, cfg.algorithm, dist)
        self.pas = ProbabilityAnnealing(cfg.pas_alpha(), cfg.pas.floor)
        self.iteration = 0
        self.stage_index = -1
        self.env: MultitaskEnv | None = None
        self.obs: EnvStep | None = None
        self.state: RecurrentState | None = None
        self.storage: RolloutStorage | None = None
        self.task_ids = torch.zeros(0, dtype=torch.long, device=dev)
        self.ep_return = torch.zeros(0, device=dev)
        self.ep_steps = torch.zeros(0, device=dev)
        self.noise: torch.Tensor | None = None
        self.noise_fresh = torch.zeros(0, dtype=torch.bool, device=dev)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.out = out
        self.writer: Any = None
        self.history: list[IterationStats] = []
        self._t0 = time.monotonic()
        self._first_rollout: dict[str, Any] | None = None  # for the rank dump (distributed.py)
        # the code that trains is the code at start (a checkpoint saved later must not name the
        # tree's HEAD of that moment); a resumed run records where it resumed
        self.code_revision = git_revision()

    # ------------------------------------------------------------------ stages
    def stage_of(self, iteration: int) -> int:
        """Index of the stage that runs iteration ``iteration`` (0-based)."""
        end = 0
        for k, (_, _, n) in enumerate(self.schedule):
            end += n
            if iteration < end:
                return k
        return len(self.schedule) - 1

    def _enter_stage(self, k: int) -> None:
        if self.env is not None:
            self.env.close()
        env_config = env_config_for_stage(self.config, k)
        if self.dist.rank > 0:  # its own robots: the stage's seed mixed with the rank
            seed = distributed.rank_seed(env_config.seed, self.dist.rank, self.iteration)
            env_config = env_config.replace(seed=seed)
        if env_config.backend == "warp" and self.device.type == "cuda":
            env_config = env_config.replace(warp_device=str(self.device))
        env = MultitaskEnv(env_config)
        if env.device != self.device:
            raise ValueError(f"the environment runs on {env.device}, the trainer on {self.device}")
        self.env = env
        self.obs = env.reset()
        check_dims(self.model.config, self.obs)
        n, dev = env.num_envs, self.device
        self.state = self.model.initial_state(n)
        self.task_ids = torch.as_tensor(env.task, dtype=torch.long, device=dev).clone()
        self.storage = RolloutStorage(
            self.config.runner.num_steps_per_env, n, model_dims(self.model.config), dev
        )
        self.ep_return = torch.zeros(n, dtype=torch.float64, device=dev)
        self.ep_steps = torch.zeros(n, dtype=torch.float64, device=dev)
        corr = self.config.algorithm.noise_correlation
        actions = self.model.config.num_actions
        self.noise = None if corr == 0.0 else torch.zeros(n, actions, device=dev)
        """AR(1) exploration noise per robot (None: white noise)."""
        self.noise_fresh = torch.ones(n, dtype=torch.bool, device=dev)
        """Robots whose next noise is a fresh draw (an episode began)."""
        self.stage_index = k

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    # ------------------------------------------------------------------ one iteration
    def collect(self) -> dict[str, Any]:
        """One rollout into the storage (no gradients); returns its statistics."""
        env, storage = self.env, self.storage
        assert env is not None and storage is not None and self.obs is not None
        assert self.state is not None
        cfg = self.config
        _, stage, _ = self.schedule[self.stage_index]
        n, steps = env.num_envs, cfg.runner.num_steps_per_env
        names = list(env.task_names)
        num_tasks = len(names)
        e = self.model.config.mixture_size
        # the statistics accumulate on the device; they reach the host once per rollout
        f64 = {"dtype": torch.float64, "device": self.device}
        gate_sum = torch.zeros(num_tasks, e, **f64)
        gate_ent = torch.zeros(num_tasks, **f64)
        gate_cnt = torch.zeros(num_tasks, **f64)
        ep_ret = torch.zeros(num_tasks, **f64)
        ep_len = torch.zeros(num_tasks, **f64)
        ep_cnt = torch.zeros(num_tasks, **f64)
        term_sums: dict[str, torch.Tensor] = {}
        reward_total = torch.zeros((), **f64)
        ones = torch.ones(n, **f64)
        curriculum: dict[str, float] = {}
        pas_p = self.pas.probability() if stage.kind == "pas" else 1.0
        gamma = cfg.algorithm.gamma
        with torch.no_grad():
            storage.clear()
            storage.initial_state = RecurrentState(*((h.clone(), c.clone()) for h, c in self.state))
            for _ in range(steps):
                obs = self.obs
                if stage.kind == "pas":
                    use = self.pas.select(n, self.generator)
                else:
                    use = torch.ones(n, dtype=torch.bool, device=self.device)
                out = self.model(
                    obs.proprio,
                    obs.command,
                    self.state,
                    Privileged(obs.privileged_explicit, obs.privileged_implicit),
                    use_privileged=use,
                )
                assert out.value is not None
                mu = out.action_mean
                sigma = self.ppo.action_std().expand_as(mu)
                actions = mu + sigma * self._action_noise(mu.shape)
                value = out.value.squeeze(-1)
                storage.add(
                    proprio=obs.proprio,
                    command=obs.command,
                    explicit=obs.privileged_explicit,
                    implicit=obs.privileged_implicit,
                    use_privileged=use,
                    actions=actions,
                    mu=mu,
                    sigma=sigma,
                    log_prob=gaussian_log_prob(actions, mu, sigma),
                    values=value,
                )
                step = env.step(actions)
                rewards = step.reward + gamma * value * step.time_out.to(value.dtype)
                storage.set_rewards(rewards, step.done)

                # statistics: gate per task, reward terms, episodes per task
                probs = out.gate_probs.to(torch.float64)
                tid = self.task_ids
                gate_sum.index_add_(0, tid, probs)
                ent = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
                gate_ent.index_add_(0, tid, ent)
                gate_cnt.index_add_(0, tid, ones)
                reward_total += step.reward.mean().to(torch.float64)
                for k, v in step.infos.get("reward_terms", {}).items():
                    term_sums[k] = term_sums.get(k, 0.0) + v.mean().to(torch.float64)
                self.ep_return += step.reward.to(torch.float64)
                self.ep_steps += 1
                done = step.done.bool()
                ended = done.to(torch.float64)
                ep_ret.index_add_(0, tid, self.ep_return * ended)
                ep_len.index_add_(0, tid, self.ep_steps * env.dt * ended)
                ep_cnt.index_add_(0, tid, ended)
                self.ep_return.masked_fill_(done, 0.0)
                self.ep_steps.masked_fill_(done, 0.0)
                if "task" in step.infos:
                    self.task_ids = step.infos["task"].long()
                curriculum = dict(step.infos.get("curriculum", curriculum))
                self.state = out.state.reset(step.done)
                if self.noise is not None:
                    self.noise_fresh |= done
                self.obs = step
            obs = self.obs
            last = self.model(
                obs.proprio,
                obs.command,
                self.state,
                Privileged(obs.privileged_explicit, obs.privileged_implicit),
                use_privileged=True,
            ).value
            assert last is not None
            storage.compute_returns(last.squeeze(-1), gamma, cfg.algorithm.lam)

        reward_sum = float(reward_total)
        terms = {k: float(v) for k, v in term_sums.items()}
        gate_sum, gate_ent, gate_cnt = gate_sum.cpu(), gate_ent.cpu(), gate_cnt.cpu()
        ep_ret, ep_len, ep_cnt = ep_ret.cpu(), ep_len.cpu(), ep_cnt.cpu()
        per_task: dict[str, dict[str, float]] = {}
        for t, name in enumerate(names):
            d: dict[str, float] = {}
            if gate_cnt[t] > 0:
                usage = gate_sum[t] / gate_cnt[t]
                d["gate_entropy"] = float(gate_ent[t] / gate_cnt[t])
                for i in range(e):
                    d[f"expert_{i}"] = float(usage[i])
            if ep_cnt[t] > 0:
                d["episode_return"] = float(ep_ret[t] / ep_cnt[t])
                d["episode_length_s"] = float(ep_len[t] / ep_cnt[t])
                d["episodes"] = float(ep_cnt[t])
            per_task[name] = d
        total_eps = float(ep_cnt.sum())
        return {
            "pas_probability": pas_p,
            "mean_reward": reward_sum / steps,
            "reward_terms": {k: v / steps for k, v in terms.items()},
            "curriculum": curriculum,
            "per_task": per_task,
            "episodes": int(total_eps),
            "mean_episode_return": float(ep_ret.sum() / total_eps) if total_eps else None,
            "mean_episode_length_s": float(ep_len.sum() / total_eps) if total_eps else None,
        }

    def train_iteration(self, after_collect: Callable[[], None] | None = None) -> IterationStats:
        """Collect one rollout and update on it.

        ``after_collect`` runs between the two, while the storage holds the rollout with its
        returns and advantages and the model still has the weights that collected it (the
        analysis tools' hook: ``moe_loco_training.analysis``); its time counts as neither.
        """
        k = self.stage_of(self.iteration)
        if k != self.stage_index:
            self._enter_stage(k)
        assert self.env is not None and self.storage is not None
        name, stage, _ = self.schedule[k]
        t0 = time.perf_counter()
        c = self.collect()
        t1 = time.perf_counter()
        if after_collect is not None:
            after_collect()
        t_update = time.perf_counter()
        if self._first_rollout is None and distributed.DUMP_ENV in os.environ:
            self._first_rollout = self._rollout_digest(c)
        upd = self.ppo.update(self.storage, self.generator)
        t2 = time.perf_counter()
        self.iteration += 1
        stats = IterationStats(
            iteration=self.iteration,
            stage=name,
            kind=stage.kind,
            samples=self.env.num_envs * self.config.runner.num_steps_per_env,
            collect_s=t1 - t0,
            update_s=t2 - t_update,
            update=upd,
            action_std=float(self.ppo.action_std().detach().mean()),
            **c,
        )
        self.history.append(stats)
        return stats

    # ------------------------------------------------------------------ the run
    def run(
        self,
        num_iterations: int | None = None,
        callback: Callable[[IterationStats], None] | None = None,
    ) -> list[IterationStats]:
        """Train ``num_iterations`` more iterations (default: to the end of the schedule); write
        logs, checkpoints and, at the end of the schedule, the exported policy into ``run_dir``."""
        threads = torch.get_num_threads()
        if self.config.torch_threads:
            torch.set_num_threads(self.config.torch_threads)
        try:
            return self._run(num_iterations, callback)
        finally:
            torch.set_num_threads(threads)  # torch's thread count is per process: give it back

    def _run(
        self,
        num_iterations: int | None,
        callback: Callable[[IterationStats], None] | None,
    ) -> list[IterationStats]:
        end = self.total_iterations
        if num_iterations is not None:
            end = min(end, self.iteration + num_iterations)
        rc = self.config.runner
        done: list[IterationStats] = []
        self._t0 = time.monotonic()
        start = self.iteration
        dist = self.dist
        if dist.enabled:
            # the same run on every rank, from rank 0's weights (fresh, --init and --resume)
            config_text = json.dumps(self.config.to_dict(), sort_keys=True)
            distributed.check_same("the configuration", config_text, dist)
            distributed.check_same("the iteration", f"{start} {end}", dist)
            distributed.broadcast_module(self.model, dist)
        run_dir = self.run_dir if dist.is_main else None  # rank 0 alone writes files
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.json").write_text(json.dumps(self.config.to_dict(), indent=1))
            if rc.tensorboard and self.writer is None:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=start + 1)
        while self.iteration < end:
            s = self.train_iteration()
            done.append(s)
            self.log(s)
            stream = sys.stderr if self.out == "stderr" else self.out
            if (
                rc.progress
                and dist.is_main
                and stream is not None
                and (s.iteration % rc.log_interval == 0 or s.iteration == end)
            ):
                print(self.progress_line(s, start, end), file=stream, flush=True)
            if callback is not None:
                callback(s)
            if run_dir is not None and rc.save_interval and s.iteration % rc.save_interval == 0:
                self.save(run_dir / "checkpoints" / f"ckpt_{s.iteration:06d}.pt")
        if run_dir is not None and done:
            self.save(run_dir / "checkpoints" / f"ckpt_{self.iteration:06d}.pt")
            self.save(run_dir / "model.pt")
            if self.iteration >= self.total_iterations and rc.export:
                self.export(run_dir / "policy.onnx")
        if self.writer is not None:
            self.writer.flush()
        if distributed.DUMP_ENV in os.environ:
            distributed.write_rank_dump(self.rank_report(), dist)
        return done

    def _rollout_digest(self, c: dict[str, Any]) -> dict[str, Any]:
        """The rollout in the storage, summarised: what tells two ranks' data apart."""
        assert self.storage is not None and self.env is not None
        d = self.storage.data
        return {
            "iteration": self.iteration + 1,
            "mean_reward": c["mean_reward"],
            "proprio_sha256": distributed.tensor_digest([d["proprio"]]),
            "actions_sha256": distributed.tensor_digest([d["actions"]]),
            "env_seed": self.env.config.seed,
        }

    def rank_report(self) -> dict[str, Any]:
        """This rank's state in hashes and numbers (``$MOE_LOCO_RANK_DUMP``, see distributed.py):
        equal ``params_sha256`` on every rank means bit-identical weights."""
        return {
            "pid": os.getpid(),
            "iteration": self.iteration,
            "learning_rate": self.ppo.learning_rate,
            "params_sha256": distributed.tensor_digest(self.model.state_dict().values()),
            "optimizer_sha256": distributed.tensor_digest(
                t
                for st in self.ppo.optimizer.state_dict()["state"].values()
                for t in st.values()
                if isinstance(t, torch.Tensor)
            ),
            "generator_sha256": distributed.tensor_digest([self.generator.get_state()]),
            "env_rng": None if self.env is None else str(self.env.rng.bit_generator.state),
            "pas_steps": self.pas.steps,
            "first_rollout": self._first_rollout,
            "mean_rewards": [s.mean_reward for s in self.history],
            "kl": [s.update.kl for s in self.history],  # the ranks' average: equal on every rank
        }

    def progress_line(self, s: IterationStats, start: int, end: int) -> str:
        elapsed = time.monotonic() - self._t0
        left = (end - s.iteration) * elapsed / max(s.iteration - start, 1)
        ep = "-" if s.mean_episode_length_s is None else f"{s.mean_episode_length_s:5.2f}s"
        pas = f" P {s.pas_probability:.3f}" if s.kind == "pas" else ""
        # several ranks: rank 0's rollout statistics, the KL averaged, the samples of all ranks
        world = self.dist.world_size
        ranks = f" over {world} ranks" if world > 1 else ""
        return (
            f"[{s.stage} {s.kind}{pas}] it {s.iteration}/{self.total_iterations} "
            f"reward/step {s.mean_reward:+.4f} ep_len {ep} std {s.action_std:.3f} "
            f"lr {s.update.learning_rate:.1e} kl {s.update.kl:.4f} | "
            f"{s.samples_per_s * world:,.0f} samples/s{ranks} (collect {s.collect_s:.2f}s update "
            f"{s.update_s:.2f}s) | eta {_hms(left)}"
        )

    def log(self, s: IterationStats) -> None:
        """TensorBoard scalars of one iteration."""
        w = self.writer
        if w is None:
            return
        i = s.iteration
        w.add_scalar("train/mean_reward_per_step", s.mean_reward, i)
        if s.mean_episode_return is not None:
            w.add_scalar("train/mean_episode_return", s.mean_episode_return, i)
            w.add_scalar("train/mean_episode_length_s", s.mean_episode_length_s, i)
        w.add_scalar("train/action_std", s.action_std, i)
        w.add_scalar("train/pas_probability", s.pas_probability, i)
        w.add_scalar("train/stage_index", self.stage_index, i)
        for k, v in asdict(s.update).items():
            w.add_scalar(f"loss/{k}", v, i)
        for k, v in s.reward_terms.items():
            w.add_scalar(f"reward/{k}", v, i)
        for task, level in s.curriculum.items():
            w.add_scalar(f"curriculum/{task}", level, i)
        for task, d in s.per_task.items():
            for k, v in d.items():
                group = "gate" if k.startswith(("expert_", "gate_")) else "episode"
                w.add_scalar(f"{group}/{task}/{k}", v, i)
        w.add_scalar("perf/collect_s", s.collect_s, i)
        w.add_scalar("perf/update_s", s.update_s, i)
        w.add_scalar("perf/samples_per_s", s.samples_per_s, i)

    # ------------------------------------------------------------------ checkpoints
    def provenance(self) -> TrainingProvenance:
        kinds = [s.kind for _, s, _ in self.schedule[: self.stage_index + 1]]
        finished_pas = "pas" in kinds and self.pas.probability() == 0.0
        names = [n for n, _, _ in self.schedule]
        return TrainingProvenance(
            code_revision=self.code_revision,
            stage="stage2" if finished_pas else "stage1",
            iterations=self.iteration,
            simulator=SIMULATOR,
            seed=self.config.seed,
            extra={
                "schedule": names,
                "current_stage": names[self.stage_index] if self.stage_index >= 0 else None,
                "iteration_scale": self.config.iteration_scale,
                # data-parallel: each iteration's update averaged the gradients of this many
                **({"ranks": self.dist.world_size} if self.dist.enabled else {}),
            },
        )

    def training_state(self) -> dict[str, Any]:
        """Everything a resume needs, as tensors and plain values (``torch.load``-safe)."""
        obs = self.obs
        return {
            "iteration": self.iteration,
            "stage_index": self.stage_index,
            "config": self.config.to_dict(),
            "ppo": self.ppo.state_dict(),
            "pas": self.pas.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "env": None if self.env is None else self.env.state_dict(),
            "obs": None
            if obs is None
            else {
                **{k: getattr(obs, k).clone() for k in OBS_FIELDS},
                "task_ids": self.task_ids.clone(),
            },
            "recurrent": None
            if self.state is None
            else [[h.clone(), c.clone()] for h, c in self.state],
            "episode": {"return": self.ep_return.clone(), "steps": self.ep_steps.clone()},
            "noise": None
            if self.noise is None
            else {"noise": self.noise.clone(), "fresh": self.noise_fresh.clone()},
        }

    def save(self, path: str | Path) -> Path:
        """A checkpoint: the exporter's format plus ``training_state`` (for ``--resume``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        env = self.env
        control = env.control if env is not None else None
        observation = env.observation if env is not None else None
        data = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "model_config": self.model.config.to_dict(),
            "model_state": self.model.state_dict(),
            "control": (control or ControlConfig()).to_dict(),
            "observation": (observation or ObservationConfig()).to_dict(),
            "provenance": asdict(self.provenance()),
            "training_state": self.training_state(),
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(data, str(tmp))
        tmp.replace(path)
        return path

    def load_training_state(self, ts: dict[str, Any], model_state: dict) -> None:
        self.model.load_state_dict(model_state)
        self.ppo.load_state_dict(ts["ppo"])
        self.pas.load_state_dict(ts["pas"])
        # the rate comes from this run's schedule (the same number when it is the checkpoint's):
        # a resume that changes the PAS stages' length (--set stages.pas.iterations) anneals at
        # the new rate from the step reached; the checkpoint's rate would end the stage short of 0
        self.pas.alpha, self.pas.floor = self.config.pas_alpha(), self.config.pas.floor
        torch.set_rng_state(ts["torch_rng"])
        self.iteration = int(ts["iteration"])
        rank = self.dist.rank
        if rank > 0:
            # the checkpoint holds rank 0's generator and robots; rank r > 0 starts fresh ones,
            # seeded from (seed, r, the resumed iteration): not the streams it started the run
            # with (the module docstring says what this costs)
            seed = distributed.rank_seed(self.config.seed, rank, self.iteration)
            self.generator.manual_seed(seed)
        else:
            self._restore_generator(ts["generator"])
        k = int(ts["stage_index"])
        if k >= 0:
            self._enter_stage(k)
            if rank > 0:
                return
            assert self.env is not None
            if self.env.load_state_dict(ts["env"]):
                # the configuration rebalanced the task shares: every robot was reset (new
                # episodes, fresh recurrent states and noise), the curricula kept
                self.obs = self.env.observe()
                self.task_ids = torch.as_tensor(
                    self.env.task, dtype=torch.long, device=self.device
                ).clone()
                return
            o = ts["obs"]
            assert self.obs is not None

            def put(t: torch.Tensor) -> torch.Tensor:
                return t.to(self.device).clone()

            self.obs = EnvStep(
                **{f: put(o[f]) for f in OBS_FIELDS}, infos={"task": put(o["task_ids"])}
            )
            self.task_ids = put(o["task_ids"])
            self.state = RecurrentState(*((put(h), put(c)) for h, c in ts["recurrent"]))
            self.ep_return = put(ts["episode"]["return"])
            self.ep_steps = put(ts["episode"]["steps"])
            noise = ts.get("noise")
            if self.noise is not None and noise is not None:
                self.noise = put(noise["noise"])
                self.noise_fresh = put(noise["fresh"])
            # a checkpoint of white noise resumed with correlated noise starts fresh draws

    def _restore_generator(self, state: torch.Tensor) -> None:
        """The checkpoint's action / minibatch / PAS generator. A state of another device
        kind's size (a CPU campaign resumed on a GPU: CPU and CUDA generators keep different
        states) gives way to a fresh seed derived from (seed, iteration): the run goes on, not
        bit-exactly. A state of the right size is restored (a bad one raises)."""
        if tuple(state.shape) == tuple(self.generator.get_state().shape):
            self.generator.set_state(state)
            return
        entropy = [int(self.config.seed) & 0xFFFFFFFF, int(self.iteration)]
        self.generator.manual_seed(int(np.random.SeedSequence(entropy).generate_state(1)[0]))

    def _action_noise(self, shape: torch.Size) -> torch.Tensor:
        """This step's unit exploration noise (``algorithm.noise_correlation``)."""
        white = torch.randn(shape, generator=self.generator, device=self.device)
        if self.noise is None:
            return white
        c = self.config.algorithm.noise_correlation
        self.noise = torch.where(
            self.noise_fresh[:, None], white, c * self.noise + math.sqrt(1.0 - c * c) * white
        )
        self.noise_fresh[:] = False
        return self.noise

    @staticmethod
    def checkpoint_config(path: str | Path) -> dict[str, Any]:
        """The plain training configuration stored in a training checkpoint."""
        data = torch.load(str(path), map_location="cpu", weights_only=True)
        if not isinstance(data, dict) or "training_state" not in data:
            raise ValueError(f"{path} is not a training checkpoint (no training state)")
        return data["training_state"]["config"]

    @classmethod
    def resume(
        cls,
        path: str | Path,
        run_dir: str | Path | None = None,
        config: TrainConfig | None = None,
        out: TextIO | Literal["stderr"] | None = "stderr",
    ) -> Trainer:
        """A trainer in the exact state of the checkpoint ``path`` (its own configuration unless
        ``config`` is given, e.g. with more iterations)."""
        data = torch.load(str(path), map_location="cpu", weights_only=True)
        if not isinstance(data, dict) or "training_state" not in data:
            raise ValueError(f"{path} is not a training checkpoint (no training state)")
        ts = data["training_state"]
        trainer = cls(config or from_dict(ts["config"]), run_dir=run_dir, out=out)
        trainer.load_training_state(ts, data["model_state"])
        return trainer

    def init_from(self, path: str | Path) -> None:
        """Copy the model weights of a checkpoint (e.g. a stage-1 oracle before a PAS run)."""
        data = torch.load(str(path), map_location="cpu", weights_only=True)
        theirs, ours = dict(data.get("model_config") or {}), self.model.config.to_dict()
        # the initial std only shapes a fresh network; the weights carry the std they learned
        theirs.pop("init_noise_std", None)
        ours.pop("init_noise_std", None)
        if theirs != ours:
            diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise ValueError(f"{path}: its model configuration differs from this run's in {diff}")
        self.model.load_state_dict(data["model_state"])
        if self.config.init_action_std is not None:
            with torch.no_grad():
                self.model.action_std.fill_(self.config.init_action_std)

    def export(self, path: str | Path) -> Path:
        """The current policy as an ONNX policy file (the exporter's contract)."""
        assert self.env is not None
        export_policy(self.model, path, self.env.control, self.env.observation, self.provenance())
        return Path(path)


def evaluate_policy(
    model: MoELocoActorCritic,
    env_config: EnvConfig,
    num_steps: int,
    seed: int = 0,
    stochastic: bool = True,
    use_privileged: bool = True,
    min_std: float = 1.0e-3,
) -> dict[str, float]:
    """Run ``model`` in a fresh environment for ``num_steps`` control steps: the mean per-step
    reward, the number of terminations and the mean completed-episode length.

    With ``stochastic`` actions are drawn with the model's own standard deviation from a generator
    seeded by ``seed``; the environment's seed is ``env_config.seed``.
    """
    gen = torch.Generator().manual_seed(seed)
    model = on_cpu(model)
    reward, terms = 0.0, 0
    with MultitaskEnv(env_config) as env, torch.no_grad():
        obs = env.reset()
        state = model.initial_state(env.num_envs)
        for _ in range(num_steps):
            out = model(
                obs.proprio,
                obs.command,
                state,
                Privileged(obs.privileged_explicit, obs.privileged_implicit),
                use_privileged=use_privileged,
            )
            a = out.action_mean
            if stochastic:
                sigma = model.action_std.clamp_min(min_std)
                a = a + sigma * torch.randn(a.shape, generator=gen)
            obs = env.step(a)
            reward += float(obs.reward.mean())
            terms += int(obs.infos["terminated"].sum()) if "terminated" in obs.infos else 0
            state = out.state.reset(obs.done)
    return {"mean_reward": reward / num_steps, "terminations": float(terms)}


def _hms(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"
