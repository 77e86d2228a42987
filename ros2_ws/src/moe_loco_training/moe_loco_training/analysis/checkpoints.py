"""A training checkpoint back into a :class:`Trainer`, with a clear error for anything else."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from moe_loco_training.env import EnvConfigError
from moe_loco_training.train.config import TrainConfigError, from_dict, set_dotted
from moe_loco_training.train.runner import Trainer, env_config_for_stage


class CheckpointError(ValueError):
    """The file is not a training checkpoint this code can continue."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dictionary of ``path``; :class:`CheckpointError` naming what is wrong."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such file")
    try:
        data = torch.load(str(p), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{p}: not a torch checkpoint ({first})") from None
    if not isinstance(data, dict) or "training_state" not in data or "model_state" not in data:
        raise CheckpointError(
            f"{p}: not a training checkpoint (no training_state/model_state; "
            "moe-loco-train writes them under runs/<run>/checkpoints/)"
        )
    return data


def trainer_from_checkpoint(
    path: str | Path, overrides: dict[str, Any] | None = None, notes: list[str] | None = None
) -> Trainer:
    """A trainer at the checkpoint's iteration, with its weights, optimiser, learning rate, PAS
    counter and random generator, quiet and writing nothing.

    Without ``overrides`` it is the exact continuation (:meth:`Trainer.resume`: the same robots
    in the same state) where this code's environment can take the saved state. With
    ``overrides`` (dotted keys of the training config, e.g. ``env.num_envs``), or when the saved
    environment state no longer fits (the environment's model changed since), the environment
    starts fresh (reset) at the checkpoint's stage; ``notes`` gets a line saying which and why.
    """
    data = read_checkpoint(path)
    ts = data["training_state"]
    if not overrides:
        try:
            trainer = Trainer(from_dict(ts["config"]), run_dir=None, out=None)
        except (TrainConfigError, EnvConfigError) as e:
            raise CheckpointError(f"{path}: its training configuration is refused ({e})") from None
        try:  # Trainer.resume, keeping the trainer to close when the state does not fit
            trainer.load_training_state(ts, data["model_state"])
        except (KeyError, ValueError, RuntimeError) as e:
            trainer.close()
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if notes is not None:
                notes.append(f"environment reset: the saved state does not fit ({reason})")
        else:
            if notes is not None:
                notes.append("environment continued from the checkpoint's state")
            return trainer
    elif notes is not None:
        notes.append(f"environment reset: overrides {overrides}")
    config = ts["config"]
    for key, value in (overrides or {}).items():
        config = set_dotted(config, key, value)
    try:
        trainer = Trainer(from_dict(config), run_dir=None, out=None)
        # the environment is built at the first iteration: check its overrides now
        env_config_for_stage(trainer.config, trainer.stage_of(int(ts["iteration"])))
    except (TrainConfigError, EnvConfigError) as e:
        raise CheckpointError(f"{path}: the overrides do not apply ({e})") from None
    try:
        trainer.model.load_state_dict(data["model_state"])
        trainer.ppo.load_state_dict(ts["ppo"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"{path}: its weights do not fit the model configuration ({e})"
        ) from None
    trainer.pas.load_state_dict(ts["pas"])
    trainer.generator.set_state(ts["generator"])
    trainer.iteration = int(ts["iteration"])
    return trainer
