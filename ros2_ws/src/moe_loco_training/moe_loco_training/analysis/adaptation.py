"""Adaptation with a new expert (paper Section IV-F, Fig. 10): walking on three feet.

From a trained checkpoint: one freshly initialised expert is appended to the actor's (and the
critic's) mixture, the gate gets one more output, and the original parts of the actor are frozen
(implicit encoder, estimator, actor LSTM, the original experts); only the gate, the new expert,
the action std and the critic learn, with the trainer's own PPO, on the three-legged tasks
(``tripod_q`` on the plane, ``tripod_slope_q`` on slopes: one front leg held up, rewarded by the
``lifted_foot_air`` and ``lifted_leg_pose`` terms). The policy runs on the estimator's output
throughout (a PAS stage with P_t = 0 after the first step), as on the robot.

The original experts are frozen by zeroing their slices of the stacked expert tensors' gradients
(:class:`~moe_loco_training.models.moe.ExpertHeads` keeps all experts in one tensor per layer);
Adam then leaves them bit-identical (zero gradient, zero moments). The result exports through the
same policy-file contract, with one expert more in its metadata.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moe_loco_training.env import MultitaskEnv
from moe_loco_training.env.config import EnvConfig, play_variant
from moe_loco_training.models import MoELocoActorCritic
from moe_loco_training.models.actor_critic import Privileged
from moe_loco_training.train.config import from_dict
from moe_loco_training.train.runner import Trainer, env_config_for_stage

FROZEN_MODULES = ("implicit_encoder", "estimator", "actor_rnn")
"""The actor's parts that keep their trained weights (with the original experts)."""


def tripod_tasks(lift_leg: str = "FR", slope_deg: tuple[float, float] = (5.0, 15.0)) -> dict:
    """The adaptation task set: three-legged walking on the plane and on slopes."""
    easy, hard = slope_deg
    return {
        "tripod_q": {"kind": "plane", "gait": "quadrupedal", "lift_leg": lift_leg},
        "tripod_slope_q": {
            "kind": "slope",
            "gait": "quadrupedal",
            "easy": easy,
            "hard": hard,
            "direction": "up_down",
            "lift_leg": lift_leg,
        },
    }


TRIPOD_WEIGHTS = {"lifted_foot_air": 3.0, "lifted_leg_pose": -0.5}
"""The three-legged terms' weights (per second, as every term): the held-up foot free of the
ground pays 3 per second, 0.43 x the linear tracking term's 7; the fold is a mild shaping."""


def add_expert(
    model: MoELocoActorCritic, seed: int = 0, gate_bias: float = 0.0
) -> MoELocoActorCritic:
    """A copy of ``model`` with one more expert: the original weights copied, the new expert
    initialised (seeded) as a fresh one, the gate's new output with zero input weights and the
    mean of the others' biases plus ``gate_bias`` (0: an equal share to start with)."""
    cfg = model.config
    if cfg.head != "moe" or model.gate is None:
        raise ValueError("adaptation adds an expert to a mixture: this model has no MoE head")
    n = cfg.num_experts
    new_cfg = replace(cfg, num_experts=n + 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        new = MoELocoActorCritic(new_cfg)
    old_sd, new_sd = model.state_dict(), new.state_dict()
    last = f"gate.net.{len(model.gate.net) - 1}"
    for k, v in new_sd.items():
        old = old_sd[k]
        if old.shape == v.shape:
            v.copy_(old)
        elif k.startswith(("actor_heads.", "critic_heads.")):
            v[:n].copy_(old)  # (experts, fan_in, fan_out) / (experts, 1, fan_out)
        elif k == f"{last}.weight":
            v[:n].copy_(old)
            v[n].zero_()
        elif k == f"{last}.bias":
            v[:n].copy_(old)
            v[n] = old.mean() + gate_bias
        else:
            raise ValueError(f"adaptation: unexpected parameter shape change in {k}")
    new.load_state_dict(new_sd)
    return new


def freeze_original(model: MoELocoActorCritic, original_experts: int) -> list[Any]:
    """Freeze the actor's trained parts; return the gradient hooks (keep them alive)."""
    for name in FROZEN_MODULES:
        for p in getattr(model, name).parameters():
            p.requires_grad_(False)
    mask = torch.ones(model.config.num_experts, 1, 1)
    mask[:original_experts] = 0.0
    hooks = []
    for p in (*model.actor_heads.weights, *model.actor_heads.biases):
        hooks.append(p.register_hook(lambda g, m=mask: g * m))
    return hooks


def frozen_state(model: MoELocoActorCritic, original_experts: int) -> dict[str, torch.Tensor]:
    """The tensors that must not change: the frozen modules and the original experts' slices."""
    out = {}
    for k, v in model.state_dict().items():
        if k.split(".")[0] in FROZEN_MODULES:
            out[k] = v.clone()
        elif k.startswith("actor_heads."):
            out[k] = v[:original_experts].clone()
    return out


@dataclass
class TripodMetrics:
    """Deterministic evaluation on the three-legged tasks (no randomisation, estimator latent)."""

    label: str
    steps: int
    lifted_free: dict[str, float] = field(default_factory=dict)
    """Per task: fraction of control steps with the held-up leg touching nothing."""
    vx_error: dict[str, float] = field(default_factory=dict)
    """Per task: mean |vx command - vx| [m/s] (heading frame)."""
    falls: dict[str, int] = field(default_factory=dict)
    new_expert_gate: dict[str, float] = field(default_factory=dict)
    """Per task: the mean gate weight of the last expert."""


def evaluate_tripod(
    model: MoELocoActorCritic, env_config: EnvConfig, steps: int, label: str
) -> TripodMetrics:
    """Run ``model`` deterministically on ``env_config`` (its play variant) for ``steps``."""
    cfg = play_variant(env_config)
    env = MultitaskEnv(cfg)
    model = model.eval()
    m = TripodMetrics(label, steps)
    try:
        obs = env.reset()
        state = model.initial_state(env.num_envs)
        names = list(env.task_names)
        task = env.task
        free = np.zeros(len(names))
        err = np.zeros(len(names))
        gate = np.zeros(len(names))
        count = np.zeros(len(names))
        falls = np.zeros(len(names), dtype=int)
        legs = env.lifted_leg
        with torch.no_grad():
            for _ in range(steps):
                out = model(
                    obs.proprio,
                    obs.command,
                    state,
                    Privileged(obs.privileged_explicit, obs.privileged_implicit),
                    use_privileged=False,
                )
                state = out.state
                cmd = obs.command[:, 0].numpy().copy()
                obs = env.step(out.action_mean)
                terms = obs.infos["reward_terms"]
                air = terms.get("quadrupedal/lifted_foot_air")
                vx = obs.privileged_explicit[:, 0].numpy()
                g = out.gate.reshape(env.num_envs, -1)[:, -1].numpy()
                for k in range(len(names)):
                    sel = task == k
                    if not sel.any():
                        continue
                    if air is not None and (legs[sel] >= 0).any():
                        free[k] += float((np.asarray(air)[sel] > 0).mean())
                    err[k] += float(np.abs(cmd[sel] - vx[sel]).mean())
                    gate[k] += float(g[sel].mean())
                    count[k] += 1
                    falls[k] += int(np.asarray(obs.infos["terminated"])[sel].sum())
        for k, name in enumerate(names):
            c = max(count[k], 1.0)
            m.lifted_free[name] = free[k] / c
            m.vx_error[name] = err[k] / c
            m.new_expert_gate[name] = gate[k] / c
            m.falls[name] = int(falls[k])
    finally:
        env.close()
        model.train()
    return m


def adaptation_trainer(
    checkpoint: str | Path,
    iterations: int,
    num_envs: int,
    lift_leg: str = "FR",
    action_std: float | None = 0.35,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    gate_bias: float = 0.0,
) -> tuple[Trainer, MoELocoActorCritic, int]:
    """A trainer for the adaptation run, its model already expanded and frozen; also the
    original model (for the 'before' evaluation) and the original expert count."""
    from moe_loco_training.analysis.checkpoints import read_checkpoint
    from moe_loco_training.train.config import set_dotted

    data = read_checkpoint(checkpoint)
    cfg = dict(data["training_state"]["config"])
    original_cfg = from_dict(cfg).model_config()
    original = MoELocoActorCritic(original_cfg)
    original.load_state_dict(data["model_state"])
    n = original_cfg.num_experts
    env = dict(cfg.get("env") or {})
    env.update(
        {
            "num_envs": num_envs,
            "terrain.tasks": tripod_tasks(lift_leg),
            "terrain.levels": 4,
            "terrain.init_max_level": 1,
            **{f"rewards.weights.quadrupedal.{k}": v for k, v in TRIPOD_WEIGHTS.items()},
        }
    )
    cfg.update(
        {
            "seed": seed,
            "env": env,
            "model": {**dict(cfg.get("model") or {}), "num_experts": n + 1},
            "init_action_std": None,
            "stages": {"adapt": {"kind": "pas", "iterations": iterations, "env": {}}},
            "pas": {**dict(cfg.get("pas") or {}), "alpha": 1.0e-6},
            "runner": {**dict(cfg.get("runner") or {}), "save_interval": 0, "export": False},
        }
    )
    for key, value in (overrides or {}).items():
        cfg = set_dotted(cfg, key, value)
    trainer = Trainer(from_dict(cfg), run_dir=run_dir, out=None)
    env_config_for_stage(trainer.config, 0)  # the environment's overrides, checked now
    expanded = add_expert(original, seed, gate_bias)
    trainer.model.load_state_dict(expanded.state_dict())
    if action_std is not None:
        with torch.no_grad():
            trainer.model.action_std.fill_(action_std)
    return trainer, original, n


@dataclass
class AdaptationResult:
    iterations: int
    samples: int
    curves: dict[str, list[float]]
    before: TripodMetrics
    after: TripodMetrics
    frozen_unchanged: bool
    wall_s: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def run_adaptation(
    trainer: Trainer,
    original: MoELocoActorCritic,
    original_experts: int,
    eval_steps: int,
    progress: Any = None,
) -> AdaptationResult:
    """Train (frozen original actor), then evaluate before/after on the three-legged tasks."""
    import time

    hooks = freeze_original(trainer.model, original_experts)
    before_frozen = frozen_state(trainer.model, original_experts)
    env_cfg = env_config_for_stage(trainer.config, 0)
    before = evaluate_tripod(original, env_cfg, eval_steps, "original policy")
    curves: dict[str, list[float]] = {"reward": [], "lifted_foot_air": [], "tracking": []}
    t0 = time.monotonic()
    n = trainer.total_iterations
    while trainer.iteration < n:
        s = trainer.train_iteration()
        terms = s.reward_terms if hasattr(s, "reward_terms") else {}
        curves["reward"].append(float(s.mean_reward))
        curves["lifted_foot_air"].append(float(terms.get("quadrupedal/lifted_foot_air", np.nan)))
        curves["tracking"].append(float(terms.get("quadrupedal/tracking_lin_vel", np.nan)))
        if progress is not None:
            progress(trainer.iteration, s)
    wall = time.monotonic() - t0
    after_frozen = frozen_state(trainer.model, original_experts)
    unchanged = all(torch.equal(before_frozen[k], after_frozen[k]) for k in before_frozen)
    after = evaluate_tripod(trainer.model, env_cfg, eval_steps, "adapted (new expert)")
    for h in hooks:
        h.remove()
    samples = n * trainer.config.runner.num_steps_per_env * env_cfg.num_envs
    return AdaptationResult(n, samples, curves, before, after, unchanged, wall)


def plot_curves(result: AdaptationResult, path: str | Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, key in zip(axes, ("reward", "lifted_foot_air", "tracking"), strict=True):
        ax.plot(np.arange(1, len(result.curves[key]) + 1), result.curves[key])
        ax.set_title(key + (" (per step)" if key != "reward" else " (mean per step)"))
        ax.set_xlabel("iteration")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def result_table(result: AdaptationResult) -> str:
    rows = ["| | " + " | ".join(f"{t}: {m}" for t in result.before.lifted_free
                                 for m in ("before", "after")) + " |"]  # fmt: skip
    rows.append("|---|" + "---|" * (2 * len(result.before.lifted_free)))

    def line(name: str, get: Any, f: str) -> str:
        cells = []
        for t in result.before.lifted_free:
            cells += [format(get(result.before)[t], f), format(get(result.after)[t], f)]
        return f"| {name} | " + " | ".join(cells) + " |"

    rows.append(
        line("held-up leg free of the ground (fraction of steps)", lambda m: m.lifted_free, ".2f")
    )
    rows.append(line("mean vx error [m/s]", lambda m: m.vx_error, ".3f"))
    rows.append(line("terminations", lambda m: m.falls, "d"))
    rows.append(line("gate weight of the last expert", lambda m: m.new_expert_gate, ".3f"))
    return "\n".join(rows) + "\n"
