"""Export of the deployable (stage-2) MoE-Loco graph to ONNX, with the contract metadata.

The exported graph is one batch-1 step of :class:`~moe_loco_training.models.MoELocoActorCritic`
without privileged input: estimator -> actor LSTM -> gate and experts (eq. 2, 3, 5).

    inputs   proprio [1, P], command [1, C], est_h est_c actor_h actor_c [1, 1, 256],
             expert_scale [E]
    outputs  actions [1, J], est_h_out est_c_out actor_h_out actor_c_out [1, 1, 256],
             gate [1, E], estimate [1, 12]

The metadata (``moe_loco_controller.core.policy_metadata``) goes into ``metadata_props``; the file
is loaded back through the runtime before the exporter returns; a file that the robot would
refuse is deleted and the error raised.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from moe_loco_controller.core.policy_metadata import (
    CONTRACT_VERSION,
    JOINT_TERMS,
    METADATA_KEY,
    ObservationSpec,
    PolicyFileError,
    PolicyMetadata,
    RecurrentTensor,
)
from moe_loco_training.control import JOINT_ORDERS, ControlConfig
from moe_loco_training.models import ModelConfig, MoELocoActorCritic, RecurrentState
from moe_loco_training.observations import ObservationConfig

INPUT_NAMES = ("proprio", "command", "est_h", "est_c", "actor_h", "actor_c", "expert_scale")
OUTPUT_NAMES = (
    "actions",
    "est_h_out",
    "est_c_out",
    "actor_h_out",
    "actor_c_out",
    "gate",
    "estimate",
)
CHECKPOINT_FORMAT = "moe_loco_checkpoint"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class TrainingProvenance:
    """How a policy came to be; written to the metadata's ``training`` object."""

    code_revision: str = "unknown"
    stage: str = "random-init"
    """``random-init``, ``stage1`` (oracle) or ``stage2`` (proprioception only, deployable)."""
    iterations: int = 0
    simulator: str = "none"
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form additions (e.g. run name, terrain curriculum); must be JSON-serialisable."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        return {**extra, **d}


def git_revision(path: str | os.PathLike[str] | None = None) -> str:
    """The commit of the code (``+dirty`` with local changes), or ``"unknown"`` outside git."""
    where = str(path or Path(__file__).resolve().parent)
    try:
        rev = subprocess.run(
            ["git", "-C", where, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev}+dirty" if dirty else rev


class DeployPolicy(nn.Module):
    """The stage-2 step of a model with explicit recurrent state: what the ONNX file computes."""

    def __init__(self, model: MoELocoActorCritic) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        proprio: torch.Tensor,
        command: torch.Tensor,
        est_h: torch.Tensor,
        est_c: torch.Tensor,
        actor_h: torch.Tensor,
        actor_c: torch.Tensor,
        expert_scale: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        state = RecurrentState((est_h, est_c), (actor_h, actor_c), (actor_h, actor_c))
        out = self.model(proprio, command, state, use_privileged=False, expert_scale=expert_scale)
        (eh, ec), (ah, ac), _ = out.state
        return out.action_mean, eh, ec, ah, ac, out.gate, out.estimate

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        cfg = self.model.config
        s = self.model.initial_state(1)
        return (
            torch.zeros(1, cfg.proprio_dim),
            torch.zeros(1, cfg.command_dim),
            s.estimator[0],
            s.estimator[1],
            s.actor[0],
            s.actor[1],
            torch.ones(cfg.mixture_size),
        )


def build_metadata(
    model: MoELocoActorCritic,
    control: ControlConfig,
    observation: ObservationConfig,
    provenance: TrainingProvenance,
    expert_labels: Sequence[str] | None = None,
) -> PolicyMetadata:
    """The contract metadata of ``model`` exported with this control and observation setup."""
    cfg = model.config
    nj = len(control.joint_names)
    spec = observation.spec(nj)
    for what, have, want in (
        ("proprio_dim", cfg.proprio_dim, spec.proprio_dim),
        ("command_dim", cfg.command_dim, spec.command_dim),
        ("num_actions", cfg.num_actions, nj),
    ):
        if have != want:
            raise ValueError(f"model {what} is {have}, the observation/control setup needs {want}")
    lat, est = cfg.latent_dim, cfg.estimate_dim
    metadata = PolicyMetadata(
        joint_names=tuple(control.joint_names),
        default_joint_pos=control.default_joint_pos,
        action_scale=np.full(nj, control.action_scale),
        action_clip=float(control.action_clip),
        kp=np.full(nj, control.kp),
        kd=np.full(nj, control.kd),
        control_dt=float(control.control_dt),
        observation=spec,
        gaits=tuple(observation.gaits),
        command_ranges={
            g: {ax: (float(r[0]), float(r[1])) for ax, r in axes.items()}
            for g, axes in observation.command_ranges.items()
        },
        num_experts=cfg.mixture_size,
        inputs={"proprio": "proprio", "command": "command", "expert_scale": "expert_scale"},
        outputs={"actions": "actions", "gate": "gate", "estimate": "estimate"},
        recurrent=(
            RecurrentTensor("est_h", "est_h_out", (1, 1, cfg.estimator_rnn_hidden)),
            RecurrentTensor("est_c", "est_c_out", (1, 1, cfg.estimator_rnn_hidden)),
            RecurrentTensor("actor_h", "actor_h_out", (1, 1, cfg.actor_rnn_hidden)),
            RecurrentTensor("actor_c", "actor_c_out", (1, 1, cfg.actor_rnn_hidden)),
        ),
        estimate_dim=est,
        estimate_slices={
            "latent": (0, lat),
            "base_lin_vel": (lat, lat + 3),
            "friction": (lat + 3, est),
        },
        training={"model": cfg.head, **provenance.to_dict()},
        expert_labels=None if expert_labels is None else tuple(expert_labels),
        contract_version=CONTRACT_VERSION,
    )
    # Through the runtime's own parser: what it would refuse fails here, before the export.
    return PolicyMetadata.from_json(metadata.to_json())


def export_policy(
    model: MoELocoActorCritic,
    path: str | os.PathLike[str],
    control: ControlConfig | None = None,
    observation: ObservationConfig | None = None,
    provenance: TrainingProvenance | None = None,
    expert_labels: Sequence[str] | None = None,
    validate: bool = True,
) -> PolicyMetadata:
    """Write ``model``'s stage-2 graph and metadata to ``path`` (ONNX); return the metadata.

    ``control.joint_names`` must be the order the model was trained in (see
    :func:`reorder_joints` to re-express a model in another order). With ``validate`` the file is
    opened through the controller's runtime, which raises if it would refuse it.
    """
    control = control or ControlConfig()
    observation = observation or ObservationConfig()
    provenance = provenance or TrainingProvenance(code_revision=git_revision())
    metadata = build_metadata(model, control, observation, provenance, expert_labels)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    deploy = DeployPolicy(copy.deepcopy(model).cpu().eval().float())
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        # torch.export notes about nn.LSTM's flat weights, progress lines and "torchvision is not
        # installed" are not ours to fix
        warnings.simplefilter("ignore")
        registry_log.setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(
                deploy,
                deploy.example_inputs(),
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                dynamo=True,
                optimize=True,
            )
        finally:
            registry_log.setLevel(level)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {METADATA_KEY: metadata.to_json()})
    proto.doc_string = "MoE-Loco stage-2 policy (estimator + LSTM + mixture of experts), batch 1"
    onnx.checker.check_model(proto)
    onnx.save_model(proto, str(path))
    if validate:
        from moe_loco_controller.core.policy import PolicyRuntime

        try:
            PolicyRuntime(path)
        except PolicyFileError:
            path.unlink(missing_ok=True)
            raise
    return metadata


# ------------------------------------------------------------------------ graph accounting
def graph_macs(path_or_proto: str | os.PathLike[str] | onnx.ModelProto) -> dict[str, int]:
    """Multiply-accumulates per step of an exported graph, by op type (MatMul, Gemm, LSTM).

    Counted from the ONNX graph itself (shapes by ONNX shape inference), independently of the
    torch model: MatMul/Gemm ``prod(output shape) * K``; LSTM ``seq * batch * 4H * (I + H)``.
    Element-wise work (activations, biases, gate products) is left out: it is < 1 % here.
    """
    proto = path_or_proto
    if not isinstance(proto, onnx.ModelProto):
        proto = onnx.load(str(proto))
    proto = onnx.shape_inference.infer_shapes(proto)
    g = proto.graph
    shapes: dict[str, list[int]] = {i.name: list(i.dims) for i in g.initializer}
    for v in [*g.input, *g.value_info, *g.output]:
        dims = v.type.tensor_type.shape.dim
        shapes[v.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in dims]
    macs: dict[str, int] = {}
    for n in g.node:
        if n.op_type in ("MatMul", "Gemm"):
            a, out = shapes[n.input[0]], shapes[n.output[0]]
            trans_a = any(at.name == "transA" and at.i for at in n.attribute)
            k = a[-2] if trans_a else a[-1]
            count = int(np.prod(out)) * k
        elif n.op_type == "LSTM":
            x, w, r = shapes[n.input[0]], shapes[n.input[1]], shapes[n.input[2]]
            count = x[0] * x[1] * (int(np.prod(w[1:])) + int(np.prod(r[1:])))
        else:
            continue
        macs[n.op_type] = macs.get(n.op_type, 0) + count
    return macs


# ------------------------------------------------------------------------ joint order
def _joint_columns(spec: ObservationSpec, perm: np.ndarray) -> np.ndarray:
    """Column permutation of the proprio vector that reorders its per-joint terms by ``perm``."""
    cols = np.arange(spec.proprio_dim)
    for name, where in spec.offsets("proprio").items():
        if name in JOINT_TERMS:
            cols[where] = cols[where][perm]
    return cols


def reorder_joints(
    model: MoELocoActorCritic,
    observation_spec: ObservationSpec,
    from_names: Sequence[str],
    to_names: Sequence[str],
) -> MoELocoActorCritic:
    """The same policy re-expressed in another joint order (weights permuted, a new model).

    Every per-joint input column (joint positions, velocities, last action) and every action
    output is permuted, so that for the same robot the new model produces the same joint targets.
    """
    from_names, to_names = list(from_names), list(to_names)
    if sorted(from_names) != sorted(to_names) or len(set(to_names)) != len(to_names):
        raise ValueError(f"{to_names} is not a permutation of {from_names}")
    perm = np.array([from_names.index(n) for n in to_names])
    cfg = model.config
    cols = torch.as_tensor(_joint_columns(observation_spec, perm))
    new = copy.deepcopy(model)
    lat = cfg.estimate_dim
    with torch.no_grad():
        # estimator input [p, c]; actor and critic input [latent, p, c]
        for rnn, offset in ((new.estimator.rnn, 0), (new.actor_rnn, lat), (new.critic_rnn, lat)):
            w = rnn.weight_ih_l0
            block = w[:, offset : offset + cfg.proprio_dim]
            w[:, offset : offset + cfg.proprio_dim] = block[:, cols]
        p = torch.as_tensor(perm)
        new.actor_heads.weights[-1].copy_(new.actor_heads.weights[-1][..., p])
        new.actor_heads.biases[-1].copy_(new.actor_heads.biases[-1][..., p])
        new.action_std.copy_(new.action_std[p])
    return new


# ------------------------------------------------------------------------ checkpoints
@dataclass
class Checkpoint:
    """A trained (or random) policy with everything the exporter needs."""

    model: MoELocoActorCritic
    control: ControlConfig = field(default_factory=ControlConfig)
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    provenance: TrainingProvenance = field(default_factory=TrainingProvenance)


def save_checkpoint(path: str | os.PathLike[str], ckpt: Checkpoint) -> None:
    """Write a checkpoint the exporter (and training, to resume) reads back."""
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "model_config": ckpt.model.config.to_dict(),
            "model_state": ckpt.model.state_dict(),
            "control": ckpt.control.to_dict(),
            "observation": ckpt.observation.to_dict(),
            "provenance": asdict(ckpt.provenance),
        },
        str(path),
    )


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; ``ValueError`` if it is not one."""
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"checkpoint not found: {path}") from None
    except Exception as e:
        raise ValueError(f"cannot read checkpoint {path}: {e}") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a MoE-Loco checkpoint (format {CHECKPOINT_FORMAT!r})")
    if data.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {data.get('version')!r} is not supported")
    model = MoELocoActorCritic(ModelConfig.from_dict(data["model_config"]))
    model.load_state_dict(data["model_state"])
    return Checkpoint(
        model=model.eval(),
        control=ControlConfig.from_dict(data["control"]),
        observation=ObservationConfig.from_dict(data["observation"]),
        provenance=TrainingProvenance(**data["provenance"]),
    )


def random_policy(seed: int, config: ModelConfig | None = None) -> MoELocoActorCritic:
    """A randomly initialised model, the same for the same seed (global RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MoELocoActorCritic(config).eval()


def in_joint_order(ckpt: Checkpoint, joint_names: Sequence[str]) -> Checkpoint:
    """The checkpoint's policy re-expressed in ``joint_names`` order (unchanged if already so)."""
    joint_names = tuple(joint_names)
    if joint_names == ckpt.control.joint_names:
        return ckpt
    spec = ckpt.observation.spec(len(joint_names))
    model = reorder_joints(ckpt.model, spec, ckpt.control.joint_names, joint_names)
    return Checkpoint(
        model, ckpt.control.with_joint_order(joint_names), ckpt.observation, ckpt.provenance
    )


# ------------------------------------------------------------------------ CLI
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="moe-loco-export",
        description="Export a MoE-Loco policy (stage-2 graph + metadata) to one ONNX file.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="a checkpoint written by training")
    src.add_argument("--random", action="store_true", help="a seeded random-initialised policy")
    p.add_argument("--seed", type=int, help="initialisation seed for --random (default 0)")
    p.add_argument(
        "--joint-order",
        choices=sorted(JOINT_ORDERS),
        default="sdk",
        help="joint order of the exported policy (default sdk); the policy is re-expressed, "
        "not changed: its SDK-order joint targets are the same in every order",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    p.add_argument("--expert-labels", help="comma-separated names of the experts, if known")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``moe-loco-export``: see ``--help``."""
    args = _parser().parse_args(argv)
    if args.checkpoint is not None:
        if args.seed is not None:
            print("moe-loco-export: --seed applies to --random only", file=sys.stderr)
            return 2
        try:
            ckpt = load_checkpoint(args.checkpoint)
        except ValueError as e:
            print(f"moe-loco-export: {e}", file=sys.stderr)
            return 1
    else:
        seed = 0 if args.seed is None else args.seed
        ckpt = Checkpoint(
            random_policy(seed),
            provenance=TrainingProvenance(code_revision=git_revision(), seed=seed),
        )
    ckpt = in_joint_order(ckpt, JOINT_ORDERS[args.joint_order])
    labels = (
        None if args.expert_labels is None else [s.strip() for s in args.expert_labels.split(",")]
    )
    try:
        meta = export_policy(
            ckpt.model, args.output, ckpt.control, ckpt.observation, ckpt.provenance, labels
        )
    except (PolicyFileError, ValueError) as e:
        print(f"moe-loco-export: {e}", file=sys.stderr)
        return 1
    t = meta.training
    print(
        f"wrote {args.output}: {meta.num_experts} experts, joint order {args.joint_order}, "
        f"proprio {meta.observation.proprio_dim}, command {meta.observation.command_dim}, "
        f"stage {t['stage']}, iterations {t['iterations']}, seed {t['seed']}, "
        f"code {t['code_revision']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
