"""The policy-file contract: what an exported MoE-Loco policy states about itself.

The exporter (``moe_loco_training.export``) writes :class:`PolicyMetadata` as JSON into the ONNX
model's ``metadata_props`` under the key :data:`METADATA_KEY`; the runtime reads it back and refuses
a file whose metadata it does not understand, with a :class:`PolicyFileError` naming the field.

JSON layout, contract version 1 (per-joint arrays are in the POLICY's joint order)::

    contract_version   1
    joint_names        [str] * J, the policy's joint order (mapped to the SDK order by name)
    default_joint_pos  [float] * J [rad]
    action_scale       float or [float] * J     PD target = default + action_scale * clip(a)
    action_clip        float > 0                clip(a) = clip(a, -action_clip, action_clip)
    kp, kd             float or [float] * J     PD gains [N m/rad], [N m s/rad]
    control_dt         float > 0 [s]            policy period (0.02 = 50 Hz)
    observation        {"proprio": [term], "command": [term], "clip": float or null}
                       term = {"name": str, "dim": int, "scale": float or [float] * dim}
                       proprio terms: projected_gravity (3), base_ang_vel (3), joint_pos (J,
                       minus default_joint_pos), joint_vel (J), last_action (J, the previous
                       action after clipping); command terms: velocity (3: vx, vy, wz),
                       gait (one-hot over ``gaits``). Observation = clip(scale * value, +-clip).
    gaits              [str], order of the gait one-hot, e.g. ["quadrupedal", "bipedal"]
    command_ranges     {gait: {"vx": [min, max], "vy": [min, max], "wz": [min, max]}}
    num_experts        int >= 1;  expert_labels: [str] * num_experts or null
    inputs             {"proprio": name, "command": name, "expert_scale": name}
    outputs            {"actions": name, "gate": name, "estimate": name}
    recurrent          [{"input": name, "output": name, "shape": [int, ...]}]
    estimate           {"dim": int, "slices": {part: [start, stop]}}; "base_lin_vel" required
    training           {"code_revision": str, "stage": str, "iterations": int,
                        "simulator": str, "seed": int or null, ...free-form extras}

Tensor shapes follow from it (batch 1): proprio [1, P] with P the sum of the proprio term dims,
command [1, C], expert_scale [num_experts], actions [1, J], gate [1, num_experts],
estimate [1, estimate.dim]; recurrent tensors have their stated shape. All float32.
"""

from __future__ import annotations

import collections
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

CONTRACT_VERSION = 1
"""The only contract version this runtime understands."""
METADATA_KEY = "moe_loco"
"""Key of the JSON metadata in the ONNX model's ``metadata_props``."""

JOINT_TERMS = ("joint_pos", "joint_vel", "last_action")
"""Proprio terms with one entry per joint, in the policy's joint order."""
PROPRIO_TERM_DIMS: dict[str, int | None] = {
    "projected_gravity": 3,
    "base_ang_vel": 3,
    "joint_pos": None,  # number of joints
    "joint_vel": None,
    "last_action": None,
}
"""The proprio terms this runtime can build (None: one per joint)."""
COMMAND_TERM_DIMS: dict[str, int | None] = {"velocity": 3, "gait": None}  # gait: len(gaits)
"""The command terms this runtime can build (None: one per gait)."""
COMMAND_AXES = ("vx", "vy", "wz")

_TOP_LEVEL = (
    "contract_version",
    "joint_names",
    "default_joint_pos",
    "action_scale",
    "action_clip",
    "kp",
    "kd",
    "control_dt",
    "observation",
    "gaits",
    "command_ranges",
    "num_experts",
    "expert_labels",
    "inputs",
    "outputs",
    "recurrent",
    "estimate",
    "training",
)
_TRAINING_REQUIRED = ("code_revision", "stage", "iterations", "simulator", "seed")


F32_MAX = float(np.finfo(np.float32).max)
MAX_EXPERTS = 256
"""Most experts a policy may have (the paper's: 6): every tensor is sized from the metadata."""
MAX_TENSOR_SIZE = 1 << 20
"""Most values in one recurrent tensor, and the most estimate values."""


class PolicyFileError(ValueError):
    """A policy file the runtime refuses.

    ``field`` names what is wrong (a dotted metadata path such as ``observation.proprio[2].dim``,
    or ``inputs.<tensor>`` for a graph tensor); ``path`` is the file, when known.
    """

    def __init__(self, message: str, field: str | None = None, path: object = None) -> None:
        self.message = message
        self.field = field
        self.path = path
        text = f"{field}: {message}" if field else message
        super().__init__(f"policy {path}: {text}" if path is not None else text)


@dataclass(frozen=True)
class ObservationTerm:
    """One term of an observation vector: its name, size and per-element scale."""

    name: str
    dim: int
    scale: np.ndarray
    """Per-element scale, shape (dim,)."""

    def to_json(self) -> dict[str, Any]:
        s = self.scale
        scale: float | list[float] = float(s[0]) if np.all(s == s[0]) else s.tolist()
        return {"name": self.name, "dim": self.dim, "scale": scale}


@dataclass(frozen=True)
class ObservationSpec:
    """The ordered terms of the proprioception and command vectors, and the clip after scaling."""

    proprio: tuple[ObservationTerm, ...]
    command: tuple[ObservationTerm, ...]
    clip: float | None = None

    @property
    def proprio_dim(self) -> int:
        return sum(t.dim for t in self.proprio)

    @property
    def command_dim(self) -> int:
        return sum(t.dim for t in self.command)

    def offsets(self, which: str) -> dict[str, slice]:
        """Where each term sits in the ``"proprio"`` or ``"command"`` vector."""
        out, start = {}, 0
        for t in getattr(self, which):
            out[t.name] = slice(start, start + t.dim)
            start += t.dim
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "proprio": [t.to_json() for t in self.proprio],
            "command": [t.to_json() for t in self.command],
            "clip": self.clip,
        }


@dataclass(frozen=True)
class RecurrentTensor:
    """A recurrent state: fed back from output ``output`` to input ``input`` every step."""

    input: str
    output: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class PolicyMetadata:
    """Everything a policy file states about itself (see the module docstring for the JSON)."""

    joint_names: tuple[str, ...]
    default_joint_pos: np.ndarray
    action_scale: np.ndarray
    action_clip: float
    kp: np.ndarray
    kd: np.ndarray
    control_dt: float
    observation: ObservationSpec
    gaits: tuple[str, ...]
    command_ranges: dict[str, dict[str, tuple[float, float]]]
    num_experts: int
    inputs: dict[str, str]
    """Roles ``proprio``, ``command``, ``expert_scale`` -> ONNX input names."""
    outputs: dict[str, str]
    """Roles ``actions``, ``gate``, ``estimate`` -> ONNX output names."""
    recurrent: tuple[RecurrentTensor, ...]
    estimate_dim: int
    estimate_slices: dict[str, tuple[int, int]]
    training: dict[str, Any]
    expert_labels: tuple[str, ...] | None = None
    contract_version: int = CONTRACT_VERSION

    # ---------------------------------------------------------------- derived
    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """ONNX input name -> shape the graph must declare."""
        shapes = {
            self.inputs["proprio"]: (1, self.observation.proprio_dim),
            self.inputs["command"]: (1, self.observation.command_dim),
            self.inputs["expert_scale"]: (self.num_experts,),
        }
        shapes.update({r.input: r.shape for r in self.recurrent})
        return shapes

    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        """ONNX output name -> shape the graph must declare."""
        shapes = {
            self.outputs["actions"]: (1, self.num_joints),
            self.outputs["gate"]: (1, self.num_experts),
            self.outputs["estimate"]: (1, self.estimate_dim),
        }
        shapes.update({r.output: r.shape for r in self.recurrent})
        return shapes

    def gait_index(self, gait: str | int) -> int:
        """Index of a gait in the one-hot, from its name or index."""
        if isinstance(gait, str):
            if gait not in self.gaits:
                raise ValueError(f"unknown gait {gait!r}; this policy knows {list(self.gaits)}")
            return self.gaits.index(gait)
        if not 0 <= int(gait) < len(self.gaits):
            raise ValueError(f"gait index {gait} out of range 0..{len(self.gaits) - 1}")
        return int(gait)

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        def arr(a: np.ndarray) -> float | list[float]:
            return float(a[0]) if np.all(a == a[0]) else [float(x) for x in a]

        return {
            "contract_version": self.contract_version,
            "joint_names": list(self.joint_names),
            "default_joint_pos": [float(x) for x in self.default_joint_pos],
            "action_scale": arr(self.action_scale),
            "action_clip": self.action_clip,
            "kp": arr(self.kp),
            "kd": arr(self.kd),
            "control_dt": self.control_dt,
            "observation": self.observation.to_json(),
            "gaits": list(self.gaits),
            "command_ranges": {
                g: {ax: list(r) for ax, r in axes.items()}
                for g, axes in self.command_ranges.items()
            },
            "num_experts": self.num_experts,
            "expert_labels": None if self.expert_labels is None else list(self.expert_labels),
            "inputs": dict(self.inputs),
            "outputs": dict(self.outputs),
            "recurrent": [
                {"input": r.input, "output": r.output, "shape": list(r.shape)}
                for r in self.recurrent
            ],
            "estimate": {
                "dim": self.estimate_dim,
                "slices": {k: list(v) for k, v in self.estimate_slices.items()},
            },
            "training": dict(self.training),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False)

    @staticmethod
    def from_json(text: str | bytes) -> PolicyMetadata:
        """Parse and validate; any problem raises :class:`PolicyFileError` naming the field."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as e:
            raise PolicyFileError(f"metadata is not valid JSON ({e})", METADATA_KEY) from None
        except RecursionError:
            raise PolicyFileError("metadata JSON is nested too deeply", METADATA_KEY) from None
        return PolicyMetadata.from_dict(data)

    @staticmethod
    def from_dict(data: Any) -> PolicyMetadata:
        """Validate a decoded JSON object; see :func:`PolicyMetadata.from_json`."""
        return _parse(data)


# -------------------------------------------------------------------- validation helpers
def _fail(path: str, message: str) -> PolicyFileError:
    return PolicyFileError(message, path)


def _get(d: Mapping[str, Any], key: str, path: str) -> Any:
    """``d[key]``, or a "missing" error for the field ``path + key``."""
    if key not in d:
        raise _fail(f"{path}{key}", "missing")
    return d[key]


def _obj(v: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise _fail(path, f"must be an object, got {type(v).__name__}")
    return v


def _keys(d: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        where = path.rstrip(".") or "metadata"
        raise _fail(where, f"unknown field(s) {unknown}")


def _int(v: Any, path: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _fail(path, f"must be an integer, got {_short(v)}")
    if minimum is not None and v < minimum:
        raise _fail(path, f"must be >= {minimum}, got {_short(v)}")
    if maximum is not None and v > maximum:
        raise _fail(path, f"must be <= {maximum}, got {_short(v)}")
    return v


def _num(v: Any, path: str, positive: bool = False, nonneg: bool = False) -> float:
    """A number that is finite as a float32 (every value ends up in a float32 tensor or wire)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _fail(path, f"must be a finite number, got {_short(v)}")
    try:
        f = float(v)
    except OverflowError:  # a JSON integer beyond float64 (10**309)
        digits = len(str(v))
        raise _fail(
            path, f"must be a finite float32 number, got an integer of {digits} digits"
        ) from None
    if not (math.isfinite(f) and abs(f) <= F32_MAX):
        raise _fail(path, f"must be a finite float32 number, got {_short(v)}")
    if positive and f <= 0:
        raise _fail(path, f"must be > 0, got {v}")
    if nonneg and f < 0:
        raise _fail(path, f"must be >= 0, got {v}")
    return f


def _short(v: Any) -> str:
    """``repr(v)`` cut to 80 characters (a hostile file may hold anything)."""
    try:
        text = repr(v)
    except (RecursionError, ValueError):  # deep nesting; int repr beyond its digit limit
        text = f"<{type(v).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def _str(v: Any, path: str) -> str:
    if not isinstance(v, str) or not v:
        raise _fail(path, f"must be a non-empty string, got {_short(v)}")
    return v


def _str_list(v: Any, path: str, unique: bool = True) -> tuple[str, ...]:
    if not isinstance(v, list) or not v:
        raise _fail(path, f"must be a non-empty list of strings, got {_short(v)}")
    out = tuple(_str(x, f"{path}[{i}]") for i, x in enumerate(v))
    if unique and len(set(out)) != len(out):
        dup = sorted(x for x, n in collections.Counter(out).items() if n > 1)
        raise _fail(path, f"has duplicates: {_short(dup)}")
    return out


def _vector(v: Any, n: int, path: str, nonneg: bool = False) -> np.ndarray:
    """A number (broadcast) or a list of exactly ``n`` finite numbers."""
    if isinstance(v, list):
        if len(v) != n:
            raise _fail(path, f"must have {n} entries, got {len(v)}")
        return np.array([_num(x, f"{path}[{i}]", nonneg=nonneg) for i, x in enumerate(v)])
    return np.full(n, _num(v, path, nonneg=nonneg))


def _terms(
    v: Any, known: dict[str, int | None], sizes: dict[str, int], path: str
) -> tuple[ObservationTerm, ...]:
    if not isinstance(v, list) or not v:
        raise _fail(path, f"must be a non-empty list of terms, got {_short(v)}")
    terms, seen = [], set()
    for i, t in enumerate(v):
        p = f"{path}[{i}]"
        t = _obj(t, p)
        _keys(t, ("name", "dim", "scale"), p)
        name = _str(_get(t, "name", f"{p}."), f"{p}.name")
        if name not in known:
            raise _fail(f"{p}.name", f"unknown term {name!r}; this runtime builds {sorted(known)}")
        if name in seen:
            raise _fail(f"{p}.name", f"term {name!r} appears twice")
        seen.add(name)
        dim = _int(_get(t, "dim", f"{p}."), f"{p}.dim", minimum=1)
        expected = known[name] if known[name] is not None else sizes[name]
        if dim != expected:
            raise _fail(
                f"{p}.dim", f"term {name!r} has {expected} values here, metadata says {dim}"
            )
        scale = _vector(_get(t, "scale", f"{p}."), dim, f"{p}.scale")
        terms.append(ObservationTerm(name, dim, scale))
    return tuple(terms)


def _parse(data: Any) -> PolicyMetadata:
    d = _obj(data, "metadata")
    # The version first: a newer file must be refused for its version, not for a field it renamed.
    version = _get(d, "contract_version", "")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _fail("contract_version", f"must be an integer, got {_short(version)}")
    if version != CONTRACT_VERSION:
        raise _fail(
            "contract_version",
            f"unknown contract version {version}; this runtime understands {CONTRACT_VERSION}",
        )
    _keys(d, _TOP_LEVEL, "")

    joints = _str_list(_get(d, "joint_names", ""), "joint_names")
    nj = len(joints)
    if not isinstance(_get(d, "default_joint_pos", ""), list):
        raise _fail("default_joint_pos", "must be a list with one position per joint")
    default = _vector(d["default_joint_pos"], nj, "default_joint_pos")
    action_scale = _vector(_get(d, "action_scale", ""), nj, "action_scale")
    action_clip = _num(_get(d, "action_clip", ""), "action_clip", positive=True)
    kp = _vector(_get(d, "kp", ""), nj, "kp", nonneg=True)
    kd = _vector(_get(d, "kd", ""), nj, "kd", nonneg=True)
    control_dt = _num(_get(d, "control_dt", ""), "control_dt", positive=True)

    gaits = _str_list(_get(d, "gaits", ""), "gaits")
    ranges_raw = _obj(_get(d, "command_ranges", ""), "command_ranges")
    _keys(ranges_raw, gaits, "command_ranges.")
    ranges: dict[str, dict[str, tuple[float, float]]] = {}
    for g in gaits:
        axes = _obj(_get(ranges_raw, g, "command_ranges."), f"command_ranges.{g}")
        _keys(axes, COMMAND_AXES, f"command_ranges.{g}.")
        ranges[g] = {}
        for ax in COMMAND_AXES:
            p = f"command_ranges.{g}.{ax}"
            r = _get(axes, ax, f"command_ranges.{g}.")
            if not isinstance(r, list) or len(r) != 2:
                raise _fail(p, f"must be [min, max], got {_short(r)}")
            lo, hi = _num(r[0], f"{p}[0]"), _num(r[1], f"{p}[1]")
            if lo > hi:
                raise _fail(p, f"min {lo} > max {hi}")
            ranges[g][ax] = (lo, hi)

    obs = _obj(_get(d, "observation", ""), "observation")
    _keys(obs, ("proprio", "command", "clip"), "observation.")
    sizes = {n: nj for n in JOINT_TERMS} | {"gait": len(gaits)}
    proprio = _terms(
        _get(obs, "proprio", "observation."), PROPRIO_TERM_DIMS, sizes, "observation.proprio"
    )
    command = _terms(
        _get(obs, "command", "observation."), COMMAND_TERM_DIMS, sizes, "observation.command"
    )
    clip = obs.get("clip")
    clip = None if clip is None else _num(clip, "observation.clip", positive=True)

    n_exp = _int(_get(d, "num_experts", ""), "num_experts", minimum=1, maximum=MAX_EXPERTS)
    labels = d.get("expert_labels")
    if labels is not None:
        labels = _str_list(labels, "expert_labels")
        if len(labels) != n_exp:
            raise _fail(
                "expert_labels", f"must have num_experts = {n_exp} entries, got {len(labels)}"
            )

    inputs = _obj(_get(d, "inputs", ""), "inputs")
    _keys(inputs, ("proprio", "command", "expert_scale"), "inputs.")
    inputs = {
        r: _str(_get(inputs, r, "inputs."), f"inputs.{r}")
        for r in ("proprio", "command", "expert_scale")
    }
    outputs = _obj(_get(d, "outputs", ""), "outputs")
    _keys(outputs, ("actions", "gate", "estimate"), "outputs.")
    outputs = {
        r: _str(_get(outputs, r, "outputs."), f"outputs.{r}")
        for r in ("actions", "gate", "estimate")
    }

    rec_raw = _get(d, "recurrent", "")
    if not isinstance(rec_raw, list):
        raise _fail("recurrent", f"must be a list, got {_short(rec_raw)}")
    recurrent = []
    for i, r in enumerate(rec_raw):
        p = f"recurrent[{i}]"
        r = _obj(r, p)
        _keys(r, ("input", "output", "shape"), f"{p}.")
        shape = _get(r, "shape", f"{p}.")
        if not isinstance(shape, list) or not shape:
            raise _fail(f"{p}.shape", f"must be a non-empty list of sizes, got {_short(shape)}")
        dims = tuple(
            _int(s, f"{p}.shape[{k}]", minimum=1, maximum=MAX_TENSOR_SIZE)
            for k, s in enumerate(shape)
        )
        if math.prod(dims) > MAX_TENSOR_SIZE:
            raise _fail(f"{p}.shape", f"{list(dims)} holds more than {MAX_TENSOR_SIZE} values")
        recurrent.append(
            RecurrentTensor(
                _str(_get(r, "input", f"{p}."), f"{p}.input"),
                _str(_get(r, "output", f"{p}."), f"{p}.output"),
                dims,
            )
        )
    in_names = [*inputs.values(), *(r.input for r in recurrent)]
    out_names = [*outputs.values(), *(r.output for r in recurrent)]
    for which, names in (("inputs", in_names), ("outputs", out_names)):
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise _fail(which, f"tensor name(s) used twice: {dup}")

    est = _obj(_get(d, "estimate", ""), "estimate")
    _keys(est, ("dim", "slices"), "estimate.")
    est_dim = _int(
        _get(est, "dim", "estimate."), "estimate.dim", minimum=1, maximum=MAX_TENSOR_SIZE
    )
    slices_raw = _obj(_get(est, "slices", "estimate."), "estimate.slices")
    slices: dict[str, tuple[int, int]] = {}
    for name, s in slices_raw.items():
        p = f"estimate.slices.{name}"
        if not isinstance(s, list) or len(s) != 2:
            raise _fail(p, f"must be [start, stop], got {_short(s)}")
        a, b = _int(s[0], f"{p}[0]", minimum=0), _int(s[1], f"{p}[1]", minimum=0)
        if not a < b <= est_dim:
            raise _fail(p, f"[{a}, {b}] is not a slice of the {est_dim} estimate values")
        slices[name] = (a, b)
    if "base_lin_vel" not in slices:
        raise _fail("estimate.slices.base_lin_vel", "missing")
    if slices["base_lin_vel"][1] - slices["base_lin_vel"][0] != 3:
        raise _fail("estimate.slices.base_lin_vel", "must span 3 values (vx, vy, vz)")

    training = dict(_obj(_get(d, "training", ""), "training"))
    for k in _TRAINING_REQUIRED:
        _get(training, k, "training.")
    for k in ("code_revision", "stage", "simulator"):
        _str(training[k], f"training.{k}")
    _int(training["iterations"], "training.iterations", minimum=0)
    if training["seed"] is not None:
        _int(training["seed"], "training.seed")

    return PolicyMetadata(
        joint_names=joints,
        default_joint_pos=default,
        action_scale=action_scale,
        action_clip=action_clip,
        kp=kp,
        kd=kd,
        control_dt=control_dt,
        observation=ObservationSpec(proprio, command, clip),
        gaits=gaits,
        command_ranges=ranges,
        num_experts=n_exp,
        inputs=inputs,
        outputs=outputs,
        recurrent=tuple(recurrent),
        estimate_dim=est_dim,
        estimate_slices=slices,
        training=training,
        expert_labels=labels,
        contract_version=version,
    )
