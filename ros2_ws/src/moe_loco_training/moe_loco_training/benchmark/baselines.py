"""Scripted baseline policy files for the benchmark, built as ONNX graphs with the contract.

They carry the same metadata as an exported MoE-Loco policy (joint order, default pose, action
scale, Kp/Kd, observation spec, command ranges; ``training.stage`` = ``scripted``), so the
controller core runs them exactly like a trained policy. They are yardsticks, not controllers:

- ``stand``: actions always 0, i.e. the PD targets are the default pose. It must score 0.
- ``trot``: an open-loop trot. A step counter in the recurrent state gives the phase
  ``phi = 2 pi f t``; diagonal pairs (FR + RL, FL + RR) alternate; each leg swings its thigh
  forward while flexing its calf (``sin phi > 0``: swing) and pushes back on stance. The
  amplitude scales with the forward command (none at vx <= 0). No feedback at all: it shows
  what blind rhythm alone achieves on each track.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from moe_loco_controller.core import go2
from moe_loco_controller.core.policy_metadata import (
    CONTRACT_VERSION,
    METADATA_KEY,
    PolicyMetadata,
    RecurrentTensor,
)
from moe_loco_training.control import ControlConfig
from moe_loco_training.observations import ObservationConfig

BASELINES = ("stand", "trot")
NUM_EXPERTS = 1
TROT_HZ = 2.0
TROT_THIGH = 1.0
"""Thigh swing amplitude in action units (x action_scale 0.25 = 0.25 rad)."""
TROT_CALF_LIFT = 1.6
"""Calf flexion during swing in action units (0.4 rad)."""


def _metadata(name: str) -> PolicyMetadata:
    control, obs = ControlConfig(), ObservationConfig()
    nj = len(control.joint_names)
    return PolicyMetadata(
        joint_names=tuple(control.joint_names),
        default_joint_pos=control.default_joint_pos,
        action_scale=np.full(nj, control.action_scale),
        action_clip=float(control.action_clip),
        kp=np.full(nj, control.kp),
        kd=np.full(nj, control.kd),
        control_dt=float(control.control_dt),
        observation=obs.spec(nj),
        gaits=tuple(obs.gaits),
        command_ranges={
            g: {ax: (float(r[0]), float(r[1])) for ax, r in axes.items()}
            for g, axes in obs.command_ranges.items()
        },
        num_experts=NUM_EXPERTS,
        inputs={"proprio": "proprio", "command": "command", "expert_scale": "expert_scale"},
        outputs={"actions": "actions", "gate": "gate", "estimate": "estimate"},
        recurrent=(RecurrentTensor("steps", "steps_out", (1, 1, 1)),),
        estimate_dim=5,
        estimate_slices={"latent": (0, 1), "base_lin_vel": (1, 4), "friction": (4, 5)},
        training={
            "model": f"scripted-{name}",
            "code_revision": "scripted",
            "stage": "scripted",
            "iterations": 0,
            "simulator": "none",
            "seed": None,
        },
        contract_version=CONTRACT_VERSION,
    )


def _trot_coefficients() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per SDK joint: phase offset, sin amplitude, swing-lift amplitude (action units)."""
    offset, amp, lift = np.zeros(12), np.zeros(12), np.zeros(12)
    for leg_index, leg in enumerate(go2.LEGS):
        pair = 0.0 if leg in ("FR", "RL") else math.pi
        thigh, calf = 3 * leg_index + 1, 3 * leg_index + 2
        offset[[3 * leg_index, thigh, calf]] = pair
        amp[thigh] = -TROT_THIGH  # thigh angle down = foot forward, during swing (sin > 0)
        lift[calf] = -TROT_CALF_LIFT  # calf more flexed = foot up, during swing
    return offset, amp, lift


def write_baseline(name: str, path: str | os.PathLike[str]) -> Path:
    """Write the scripted baseline ``name`` (:data:`BASELINES`) to ``path``; return the path."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {BASELINES}")
    meta = _metadata(name)
    p, c = meta.observation.proprio_dim, meta.observation.command_dim
    f = TensorProto.FLOAT
    offset, amp, lift = _trot_coefficients()
    k = 2 * math.pi * TROT_HZ * meta.control_dt
    on = 1.0 if name == "trot" else 0.0
    inits = [
        numpy_helper.from_array(np.ones((1, 1, 1), np.float32), "one"),
        numpy_helper.from_array(np.array([k], np.float32), "k"),
        numpy_helper.from_array(np.array([1, 1], np.int64), "shape11"),
        numpy_helper.from_array(offset.reshape(1, 12).astype(np.float32), "offset"),
        numpy_helper.from_array((amp * on).reshape(1, 12).astype(np.float32), "amp"),
        numpy_helper.from_array((lift * on).reshape(1, 12).astype(np.float32), "lift"),
        numpy_helper.from_array(np.array([0], np.int64), "c0"),
        numpy_helper.from_array(np.array([1], np.int64), "c1"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(1.0, np.float32), "unit"),
        numpy_helper.from_array(np.zeros((1, NUM_EXPERTS), np.float32), "logits"),
        numpy_helper.from_array(np.zeros((1, 5), np.float32), "est"),
        numpy_helper.from_array(np.zeros((1, p), np.float32), "pzero"),
    ]
    nodes = [
        helper.make_node("Add", ["steps", "one"], ["steps_out"]),
        helper.make_node("Reshape", ["steps", "shape11"], ["t"]),
        helper.make_node("Mul", ["t", "k"], ["phase"]),
        helper.make_node("Add", ["phase", "offset"], ["phi"]),
        helper.make_node("Sin", ["phi"], ["s"]),
        helper.make_node("Relu", ["s"], ["swing"]),
        helper.make_node("Mul", ["s", "amp"], ["a_sin"]),
        helper.make_node("Mul", ["swing", "lift"], ["a_lift"]),
        helper.make_node("Add", ["a_sin", "a_lift"], ["a_raw"]),
        # amplitude: the scaled forward command (2 vx), clipped to [0, 1]
        helper.make_node("Slice", ["command", "c0", "c1", "axis1"], ["vx"]),
        helper.make_node("Clip", ["vx", "zero", "unit"], ["gain"]),
        helper.make_node("Mul", ["a_raw", "gain"], ["a_cmd"]),
        # proprio enters (times 0) so the graph has the contract's inputs in use
        helper.make_node("Mul", ["proprio", "pzero"], ["p0"]),
        helper.make_node("ReduceSum", ["p0", "axis1"], ["psum"], keepdims=1),
        helper.make_node("Add", ["a_cmd", "psum"], ["actions"]),
        helper.make_node("Softmax", ["logits"], ["soft"], axis=-1),
        helper.make_node("Mul", ["soft", "expert_scale"], ["gate"]),
        helper.make_node("Identity", ["est"], ["estimate"]),
    ]
    graph = helper.make_graph(
        nodes,
        f"scripted_{name}",
        [
            helper.make_tensor_value_info("proprio", f, [1, p]),
            helper.make_tensor_value_info("command", f, [1, c]),
            helper.make_tensor_value_info("steps", f, [1, 1, 1]),
            helper.make_tensor_value_info("expert_scale", f, [NUM_EXPERTS]),
        ],
        [
            helper.make_tensor_value_info("actions", f, [1, 12]),
            helper.make_tensor_value_info("steps_out", f, [1, 1, 1]),
            helper.make_tensor_value_info("gate", f, [1, NUM_EXPERTS]),
            helper.make_tensor_value_info("estimate", f, [1, 5]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.doc_string = f"MoE-Loco benchmark baseline: scripted {name}"
    helper.set_model_props(model, {METADATA_KEY: meta.to_json()})
    onnx.checker.check_model(model)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(out))
    from moe_loco_controller.core.policy import PolicyRuntime

    PolicyRuntime(out)  # refuses what the robot would refuse
    return out
