"""The policy runtime: one exported MoE-Loco policy in an ONNX Runtime session.

:class:`PolicyRuntime` loads and validates a policy file (see ``policy_metadata`` for the
contract), keeps the recurrent state between steps, holds the expert scale w of eq. (5), and runs
one step at a time: ``step(proprio, command) -> PolicyStep(actions, gate, estimate)``.
:class:`ActionMap` turns actions (policy joint order) into SDK-order PD targets by joint name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnxruntime as ort

from moe_loco_controller.core.command_guard import check_policy_bounds
from moe_loco_controller.core.expert_presets import (
    ExpertPreset,
    load_expert_presets,
    validate_expert_scale,
)
from moe_loco_controller.core.joint_order import JointOrder, JointOrderError
from moe_loco_controller.core.policy_metadata import METADATA_KEY, PolicyFileError, PolicyMetadata
from moe_loco_controller.core.safety import GAITS_WITH_TILT_LIMITS

log = logging.getLogger(__name__)

PROVIDERS = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}
"""Execution providers asked for, by device name, best first. ``"auto"`` is ``"tensorrt"``."""


class PolicyStepError(RuntimeError):
    """A policy step that produced no usable output (ONNX Runtime failed, or wrong shapes)."""


class PolicyStep(NamedTuple):
    """What one step returns. Arrays are fresh each step (the caller may keep them)."""

    actions: np.ndarray
    """Raw actions, policy joint order, (num_joints,), float32; :class:`ActionMap` clips them."""
    gate: np.ndarray
    """Applied gate g_i = w_i * softmax(g(h_t))_i of eq. (5), (num_experts,)."""
    estimate: np.ndarray
    """Estimator output, (estimate_dim,); see ``PolicyMetadata.estimate_slices``."""

    def finite(self) -> bool:
        """Whether every returned value is finite."""
        return bool(
            np.isfinite(self.actions).all()
            and np.isfinite(self.gate).all()
            and np.isfinite(self.estimate).all()
        )


@dataclass(frozen=True)
class ActionMap:
    """From policy actions to joint targets: ``default + action_scale * clip(a)``, SDK order."""

    metadata: PolicyMetadata
    joint_order: JointOrder

    @staticmethod
    def of(metadata: PolicyMetadata) -> ActionMap:
        return ActionMap(metadata, JointOrder(metadata.joint_names))

    def clip(self, actions: np.ndarray) -> np.ndarray:
        """Actions clipped to +-action_clip (policy order): also what ``last_action`` observes."""
        c = self.metadata.action_clip
        return np.clip(actions, -c, c)

    def targets_policy_order(self, actions: np.ndarray) -> np.ndarray:
        """Joint position targets [rad] in the policy's joint order."""
        m = self.metadata
        return m.default_joint_pos + m.action_scale * self.clip(np.asarray(actions, np.float64))

    def pd_targets_sdk(self, actions: np.ndarray) -> np.ndarray:
        """Joint position targets [rad] in SDK order, mapped by joint name."""
        return self.joint_order.to_sdk(self.targets_policy_order(actions))

    @property
    def kp_sdk(self) -> np.ndarray:
        """Position gains in SDK order."""
        return self.joint_order.to_sdk(self.metadata.kp)

    @property
    def kd_sdk(self) -> np.ndarray:
        """Velocity gains in SDK order."""
        return self.joint_order.to_sdk(self.metadata.kd)

    @property
    def default_pose_sdk(self) -> np.ndarray:
        """The policy's default joint positions in SDK order."""
        return self.joint_order.to_sdk(self.metadata.default_joint_pos)


def select_providers(device: str) -> list[str]:
    """The ONNX Runtime providers for ``device`` (cpu, cuda, tensorrt, auto) that exist here.

    An accelerator that is asked for but absent is skipped with a warning; the CPU always remains.
    """
    key = "tensorrt" if device == "auto" else device
    if key not in PROVIDERS:
        raise ValueError(f"device must be one of {[*PROVIDERS, 'auto']}, got {device!r}")
    available = set(ort.get_available_providers())
    chosen = [p for p in PROVIDERS[key] if p in available]
    missing = [p for p in PROVIDERS[key] if p not in available]
    if missing and device != "auto":
        log.warning("ONNX Runtime here lacks %s; using %s", missing, chosen)
    return chosen


def _open_session(
    path: Path, providers: list[str], intra_op_threads: int, inter_op_threads: int
) -> ort.InferenceSession:
    if not path.exists():
        raise PolicyFileError("file not found", path=path)
    if not path.is_file():
        raise PolicyFileError("not a file", path=path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = inter_op_threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only; a bad file is reported through PolicyFileError
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as e:  # ORT raises its own Fail/InvalidProtobuf/InvalidGraph types
        reason = str(e).strip()[:300]
        raise PolicyFileError(f"not a loadable ONNX model ({reason})", path=path) from e


def _shape_mismatch(declared: Sequence[int | str | None], expected: tuple[int, ...]) -> bool:
    """Whether a declared ONNX shape disagrees with the metadata's (a symbolic dim fits any)."""
    if len(declared) != len(expected):
        return True
    return any(isinstance(d, int) and d != e for d, e in zip(declared, expected, strict=True))


def _check_io(session: ort.InferenceSession, meta: PolicyMetadata) -> None:
    """Graph inputs/outputs must be exactly the metadata's, float32, with its shapes."""
    for kind, args, expected in (
        ("input", session.get_inputs(), meta.input_shapes()),
        ("output", session.get_outputs(), meta.output_shapes()),
    ):
        declared = {a.name: a for a in args}
        missing = sorted(set(expected) - set(declared))
        if missing:
            raise PolicyFileError(
                f"the graph has no {kind}(s) {missing} that the metadata names; "
                f"graph {kind}s: {sorted(declared)}",
                f"{kind}s",
            )
        extra = sorted(set(declared) - set(expected))
        if extra:
            raise PolicyFileError(
                f"the graph has {kind}(s) {extra} that the metadata does not name", f"{kind}s"
            )
        for name, shape in expected.items():
            arg = declared[name]
            if arg.type != "tensor(float)":
                raise PolicyFileError(
                    f"{kind} {name!r} is {arg.type}, expected tensor(float)", f"{kind}s.{name}"
                )
            if _shape_mismatch(arg.shape, shape):
                raise PolicyFileError(
                    f"{kind} {name!r} has shape {list(arg.shape)} in the graph, "
                    f"the metadata implies {list(shape)}",
                    f"{kind}s.{name}",
                )


def load_policy_metadata(session: ort.InferenceSession) -> PolicyMetadata:
    """Parse and validate the contract metadata of an open session."""
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise PolicyFileError(
            f"the ONNX model has no '{METADATA_KEY}' entry in its metadata_props "
            "(not exported by moe_loco_training.export?)",
            METADATA_KEY,
        )
    meta = PolicyMetadata.from_json(props[METADATA_KEY])
    try:
        JointOrder(meta.joint_names)
    except JointOrderError as e:
        raise PolicyFileError(str(e), "joint_names") from None
    for i, gait in enumerate(meta.gaits):  # the supervisor must know each gait's tilt limits
        if gait not in GAITS_WITH_TILT_LIMITS:
            raise PolicyFileError(
                f"no tilt limits for gait {gait!r} in this runtime (known: "
                f"{list(GAITS_WITH_TILT_LIMITS)})",
                f"gaits[{i}]",
            )
    check_policy_bounds(meta)
    return meta


class PolicyRuntime:
    """One loaded policy with its recurrent state and expert scale.

    ``device``: ``"cpu"`` (default), ``"cuda"``, ``"tensorrt"`` or ``"auto"`` (the best present);
    an accelerator that is absent falls back to the CPU. ``intra_op_threads`` defaults to 1: the
    graph is small and batch 1, so more threads only add synchronisation jitter.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        device: str = "cpu",
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
        presets_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.session = _open_session(
            self.path, select_providers(device), intra_op_threads, inter_op_threads
        )
        try:
            self.metadata = meta = load_policy_metadata(self.session)
            _check_io(self.session, meta)
        except PolicyFileError as e:
            raise PolicyFileError(e.message, e.field, path=self.path) from None
        self.providers: list[str] = self.session.get_providers()
        self.action_map = ActionMap.of(meta)
        self._presets_path = presets_path
        self._presets: dict[str, ExpertPreset] | None = None

        self._proprio = np.zeros((1, meta.observation.proprio_dim), dtype=np.float32)
        self._command = np.zeros((1, meta.observation.command_dim), dtype=np.float32)
        self._scale = np.ones(meta.num_experts, dtype=np.float32)
        self._feed: dict[str, np.ndarray] = {
            meta.inputs["proprio"]: self._proprio,
            meta.inputs["command"]: self._command,
            meta.inputs["expert_scale"]: self._scale,
        }
        self._rec_inputs = [r.input for r in meta.recurrent]
        self._output_names = [
            meta.outputs["actions"],
            meta.outputs["gate"],
            meta.outputs["estimate"],
            *(r.output for r in meta.recurrent),
        ]
        self._zero_state = {r.input: np.zeros(r.shape, dtype=np.float32) for r in meta.recurrent}
        out_shapes = meta.output_shapes()
        self._out_shapes = [out_shapes[n] for n in self._output_names]
        self.reset()
        try:  # one step on zeros: a graph with symbolic dimensions shows its real shapes here
            self.step(np.zeros(self._proprio.shape[1]), np.zeros(self._command.shape[1]))
        except PolicyStepError as e:
            raise PolicyFileError(f"a first step on zeros fails: {e}", path=self.path) from None
        self.reset()

    # ---------------------------------------------------------------- state
    def reset(self) -> None:
        """Zero the recurrent state (start of an episode, or after the policy was not running)."""
        for name, zero in self._zero_state.items():
            self._feed[name] = zero.copy()

    def get_state(self) -> dict[str, np.ndarray]:
        """A copy of the recurrent state, by input name."""
        return {name: self._feed[name].copy() for name in self._rec_inputs}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a state from :meth:`get_state`."""
        if set(state) != set(self._rec_inputs):
            raise ValueError(f"state must have exactly {self._rec_inputs}, got {sorted(state)}")
        for name, value in state.items():
            v = np.asarray(value, dtype=np.float32)
            if v.shape != self._zero_state[name].shape:
                raise ValueError(f"{name} must have shape {self._zero_state[name].shape}")
            self._feed[name] = v.copy()

    # ---------------------------------------------------------------- expert scale
    @property
    def num_experts(self) -> int:
        return self.metadata.num_experts

    @property
    def expert_scale(self) -> np.ndarray:
        """A copy of the scale w in force."""
        return self._scale.copy()

    def set_expert_scale(self, weights: Sequence[float] | np.ndarray) -> np.ndarray:
        """Set w (one finite weight >= 0 per expert, not all zero); return the scale in force.

        A refused request raises ``ValueError`` with the reason and leaves the old scale in place.
        """
        w = validate_expert_scale(weights, self.num_experts)
        self._scale[:] = w
        return self.expert_scale

    @property
    def presets(self) -> dict[str, ExpertPreset]:
        """The named presets (loaded from YAML on first use)."""
        if self._presets is None:
            self._presets = load_expert_presets(self._presets_path)
        return self._presets

    def set_expert_preset(self, name: str) -> np.ndarray:
        """Set w from a named preset; ``ValueError`` (old scale kept) if unknown or unfit."""
        if name not in self.presets:
            raise ValueError(f"unknown expert preset {name!r}; known: {sorted(self.presets)}")
        return self.set_expert_scale(self.presets[name].resolve(self.num_experts))

    # ---------------------------------------------------------------- step
    def step(self, proprio: np.ndarray, command: np.ndarray) -> PolicyStep:
        """One policy step: advance the recurrent state and return actions, gate and estimate.

        ``proprio`` (proprio_dim,) and ``command`` (command_dim,), as the observation builder makes
        them. Non-finite inputs are not checked here (the safety supervisor's job); a non-finite
        state persists until :meth:`reset`.
        """
        try:
            self._proprio[0] = proprio
            self._command[0] = command
        except ValueError:
            raise ValueError(
                f"proprio must have {self._proprio.shape[1]} values and command "
                f"{self._command.shape[1]}; got shapes {np.shape(proprio)}, {np.shape(command)}"
            ) from None
        try:
            outs = self.session.run(self._output_names, self._feed)
        except Exception as e:  # ORT's own exception types
            raise PolicyStepError(f"ONNX Runtime failed: {str(e).strip()[:300]}") from e
        for name, value, shape in zip(self._output_names, outs, self._out_shapes, strict=True):
            if value.shape != shape or value.dtype != np.float32:
                raise PolicyStepError(
                    f"output {name!r} is {value.dtype}{list(value.shape)}, "
                    f"the metadata says float32{list(shape)}"
                )
        for name, value in zip(self._rec_inputs, outs[3:], strict=True):
            self._feed[name] = value
        return PolicyStep(outs[0][0], outs[1][0], outs[2][0])

    def base_velocity(self, step: PolicyStep) -> np.ndarray:
        """The estimator's base linear velocity [m/s] in a step's estimate (telemetry only)."""
        a, b = self.metadata.estimate_slices["base_lin_vel"]
        return step.estimate[a:b]
