"""Tiny contract-conforming policy files for controller tests, built with onnx.helper (no torch).

The graph: ``actions = proprio @ W + command @ Wc + bias`` (times NaN if asked), one recurrent
pair (``h_out = h + 1``, so ``h`` counts the steps since the last reset; ``c_out = c``),
``gate = softmax(logits) * expert_scale`` (eq. 5) and ``estimate = reshape(h_out)`` (so the
estimated base velocity shows the step count). Real MoE policies come from moe-loco-export.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from moe_loco_controller.core import go2
from moe_loco_controller.core.joint_order import JointOrder
from moe_loco_controller.core.policy_metadata import (
    METADATA_KEY,
    ObservationSpec,
    ObservationTerm,
    PolicyMetadata,
    RecurrentTensor,
)

H = 12  # recurrent width == estimate width


def spec(num_joints: int = 12) -> ObservationSpec:
    def term(name, dim, scale):
        return ObservationTerm(name, dim, np.broadcast_to(np.asarray(scale, float), (dim,)))

    proprio = (
        term("projected_gravity", 3, 1.0),
        term("base_ang_vel", 3, 0.25),
        term("joint_pos", num_joints, 1.0),
        term("joint_vel", num_joints, 0.05),
        term("last_action", num_joints, 1.0),
    )
    command = (term("velocity", 3, [2.0, 2.0, 0.25]), term("gait", 2, 1.0))
    return ObservationSpec(proprio, command, 100.0)


def metadata(joint_names: Sequence[str] = go2.JOINT_NAMES, num_experts: int = 6) -> PolicyMetadata:
    nj = len(joint_names)
    default = JointOrder(joint_names).from_sdk(go2.DEFAULT_STANDING_POSE)
    return PolicyMetadata(
        joint_names=tuple(joint_names),
        default_joint_pos=default,
        action_scale=np.full(nj, 0.25),
        action_clip=10.0,
        kp=np.full(nj, 40.0),
        kd=np.full(nj, 0.5),
        control_dt=0.02,
        observation=spec(nj),
        gaits=("quadrupedal", "bipedal"),
        command_ranges={
            "quadrupedal": {"vx": (-1.0, 1.0), "vy": (-0.5, 0.5), "wz": (-1.0, 1.0)},
            "bipedal": {"vx": (-0.3, 0.6), "vy": (-0.2, 0.2), "wz": (-0.5, 0.5)},
        },
        num_experts=num_experts,
        inputs={"proprio": "proprio", "command": "command", "expert_scale": "expert_scale"},
        outputs={"actions": "actions", "gate": "gate", "estimate": "estimate"},
        recurrent=(
            RecurrentTensor("h", "h_out", (1, 1, H)),
            RecurrentTensor("c", "c_out", (1, 1, H)),
        ),
        estimate_dim=H,
        estimate_slices={"latent": (0, 8), "base_lin_vel": (8, 11), "friction": (11, 12)},
        training={
            "code_revision": "test",
            "stage": "test",
            "iterations": 0,
            "simulator": "none",
            "seed": None,
        },
    )


def write_policy(
    path: Path,
    joint_names: Sequence[str] = go2.JOINT_NAMES,
    bias: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    command_weights: np.ndarray | None = None,
    nan: bool = False,
    gate_logits: np.ndarray | None = None,
    meta_changes: dict | None = None,
    actions_out: int | None = None,
    num_experts: int = 6,
    nan_above_vx: float | None = None,
) -> Path:
    """Write a test policy; ``bias`` (policy joint order) is the action when ``weights`` is 0.

    ``meta_changes``: top-level metadata fields to overwrite in the JSON (hostile files);
    ``nan_above_vx``: every action is NaN while the command's vx exceeds this [m/s];
    ``actions_out``: the graph declares the action count symbolic and returns, at its first
    step after a reset, only that many (a data-dependent slice: no shape inference sees it).
    """
    meta = metadata(joint_names, num_experts)
    p, c, nj, e = (
        meta.observation.proprio_dim,
        meta.observation.command_dim,
        meta.num_joints,
        num_experts,
    )
    declared_actions: list = [1, nj] if actions_out is None else [1, "num_actions"]
    w = np.zeros((p, nj), np.float32) if weights is None else np.asarray(weights, np.float32)
    wc = (
        np.zeros((c, nj), np.float32)
        if command_weights is None
        else np.asarray(command_weights, np.float32)
    )
    b = np.zeros(nj, np.float32) if bias is None else np.asarray(bias, np.float32)
    logits = np.linspace(-1, 1, e).astype(np.float32) if gate_logits is None else gate_logits
    inits = [
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(wc, "Wc"),
        numpy_helper.from_array(b.reshape(1, nj), "B"),
        numpy_helper.from_array(np.asarray(logits, np.float32).reshape(1, e), "logits"),
        numpy_helper.from_array(np.ones((1, 1, H), np.float32), "one"),
        numpy_helper.from_array(np.array([1, H], np.int64), "est_shape"),
        numpy_helper.from_array(np.array([np.nan if nan else 1.0], np.float32), "k"),
    ]
    nodes = [
        helper.make_node("MatMul", ["proprio", "W"], ["pw"]),
        helper.make_node("MatMul", ["command", "Wc"], ["cw"]),
        helper.make_node("Add", ["pw", "cw"], ["pcw"]),
        helper.make_node("Add", ["pcw", "B"], ["a0"]),
        helper.make_node("Mul", ["a0", "k"], ["actions" if actions_out is None else "a1"]),
        helper.make_node("Add", ["h", "one"], ["h_out"]),
        helper.make_node("Identity", ["c"], ["c_out"]),
        helper.make_node("Softmax", ["logits"], ["soft"], axis=-1),
        helper.make_node("Mul", ["soft", "expert_scale"], ["gate"]),
        helper.make_node("Reshape", ["h_out", "est_shape"], ["estimate"]),
    ]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "test_policy",
        [
            helper.make_tensor_value_info("proprio", f, [1, p]),
            helper.make_tensor_value_info("command", f, [1, c]),
            helper.make_tensor_value_info("h", f, [1, 1, H]),
            helper.make_tensor_value_info("c", f, [1, 1, H]),
            helper.make_tensor_value_info("expert_scale", f, [e]),
        ],
        [
            helper.make_tensor_value_info("actions", f, declared_actions),
            helper.make_tensor_value_info("h_out", f, [1, 1, H]),
            helper.make_tensor_value_info("c_out", f, [1, 1, H]),
            helper.make_tensor_value_info("gate", f, [1, e]),
            helper.make_tensor_value_info("estimate", f, [1, H]),
        ],
        inits,
    )
    if nan_above_vx is not None:  # actions = a0 * k + 0 * sqrt(threshold - scaled vx)
        vx_scale = float(meta.observation.command[0].scale[0])
        inits += [
            numpy_helper.from_array(np.array([[nan_above_vx * vx_scale]], np.float32), "thr"),
            numpy_helper.from_array(np.zeros((1, 1), np.float32), "zero_f"),
            numpy_helper.from_array(np.array([0], np.int64), "c_start"),
            numpy_helper.from_array(np.array([1], np.int64), "c_end"),
            numpy_helper.from_array(np.array([1], np.int64), "c_axis"),
        ]
        for n in nodes:
            if n.output[0] in ("actions", "a1"):
                n.output[0] = "a_raw"
        out_name = "actions" if actions_out is None else "a1"
        nodes += [
            helper.make_node("Slice", ["command", "c_start", "c_end", "c_axis"], ["vx_scaled"]),
            helper.make_node("Sub", ["thr", "vx_scaled"], ["margin"]),
            helper.make_node("Sqrt", ["margin"], ["root"]),
            helper.make_node("Mul", ["root", "zero_f"], ["nan_or_zero"]),
            helper.make_node("Add", ["a_raw", "nan_or_zero"], [out_name]),
        ]
        graph = helper.make_graph(
            nodes, "test_policy", list(graph.input), list(graph.output), inits
        )
    if actions_out is not None:  # actions = a1[:, :actions_out + sum(h)]
        inits += [
            numpy_helper.from_array(np.array([actions_out], np.int64), "n_out"),
            numpy_helper.from_array(np.array([0], np.int64), "zero_i"),
            numpy_helper.from_array(np.array([1], np.int64), "axis_1"),
        ]
        nodes += [
            helper.make_node("ReduceSum", ["h"], ["h_sum"], keepdims=0),
            helper.make_node("Cast", ["h_sum"], ["h_sum_i"], to=TensorProto.INT64),
            helper.make_node("Add", ["n_out", "h_sum_i"], ["end"]),
            helper.make_node("Slice", ["a1", "zero_i", "end", "axis_1"], ["actions"]),
        ]
        graph = helper.make_graph(
            nodes, "test_policy", list(graph.input), list(graph.output), inits
        )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    text = meta.to_json()
    if meta_changes:
        text = json.dumps({**meta.to_dict(), **meta_changes})
    helper.set_model_props(model, {METADATA_KEY: text})
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))
    return path
