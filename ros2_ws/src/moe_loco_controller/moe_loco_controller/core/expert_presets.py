"""The expert scale w of the paper's eq. (5): its rules and the named presets from YAML.

Rules for a scale: one weight per expert of the loaded policy, every weight finite and >= 0, and
not all zero. :func:`validate_expert_scale` enforces them; a refused scale raises ``ValueError``
with the reason. Presets live in ``config/expert_presets.yaml`` (format documented there).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moe_loco_controller.core.strict_yaml import load_strict_yaml

PRESETS_FILE = "expert_presets.yaml"
PRESETS_VERSION = 1


class ExpertPresetError(ValueError):
    """A presets file that cannot be used, or a preset that does not fit the policy."""


def validate_expert_scale(weights: Sequence[float] | np.ndarray, num_experts: int) -> np.ndarray:
    """``weights`` as a float32 array (num_experts,), or ``ValueError`` saying what is wrong."""
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"expert scale must be a list of numbers, got {weights!r}") from None
    if w.ndim != 1 or w.shape[0] != num_experts:
        raise ValueError(
            f"expert scale must have one weight per expert ({num_experts}), got shape {w.shape}"
        )
    if not np.all(np.isfinite(w)):
        bad = [i for i in range(num_experts) if not math.isfinite(w[i])]
        raise ValueError(f"expert scale must be finite; not finite at expert(s) {bad}")
    if np.any(w < 0):
        raise ValueError(
            f"expert scale must be >= 0; negative at expert(s) {np.flatnonzero(w < 0).tolist()}"
        )
    if not np.any(w > 0):
        raise ValueError("expert scale must not be all zero (the policy would output nothing)")
    # the policy takes float32: judge the values it will get, not the float64 ones asked for
    with np.errstate(over="ignore", under="ignore"):
        w32 = w.astype(np.float32)
    big = np.flatnonzero(~np.isfinite(w32)).tolist()
    if big:
        raise ValueError(f"expert scale must be finite as float32; too large at expert(s) {big}")
    if not np.any(w32 > 0):
        raise ValueError("expert scale must not be all zero as float32 (too small to represent)")
    return w32


@dataclass(frozen=True)
class ExpertPreset:
    """One named preset: a full weight list, or a fill value with single-expert overrides."""

    name: str
    description: str = ""
    weights: tuple[float, ...] | None = None
    fill: float | None = None
    experts: dict[int, float] = field(default_factory=dict)

    def resolve(self, num_experts: int) -> np.ndarray:
        """The scale for a policy with ``num_experts`` experts (``ValueError`` if it cannot be)."""
        if self.weights is not None:
            if len(self.weights) != num_experts:
                raise ValueError(
                    f"preset {self.name!r} has {len(self.weights)} weights, "
                    f"the policy has {num_experts} experts"
                )
            w = np.array(self.weights, dtype=np.float64)
        else:
            out = [i for i in self.experts if i >= num_experts]
            if out:
                raise ValueError(
                    f"preset {self.name!r} names expert(s) {sorted(out)}, "
                    f"the policy has only {num_experts} (0..{num_experts - 1})"
                )
            w = np.full(num_experts, self.fill, dtype=np.float64)
            for i, v in self.experts.items():
                w[i] = v
        try:
            return validate_expert_scale(w, num_experts)
        except ValueError as e:
            raise ValueError(f"preset {self.name!r}: {e}") from None


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ExpertPresetError(f"{where}: must be a number, got {v!r}")
    return float(v)


def parse_expert_presets(data: Any, source: str = "presets") -> dict[str, ExpertPreset]:
    """Validate a decoded presets document (see ``config/expert_presets.yaml``)."""
    if not isinstance(data, Mapping):
        raise ExpertPresetError(f"{source}: must be a mapping with 'version' and 'presets'")
    unknown = sorted(set(data) - {"version", "presets"})
    if unknown:
        raise ExpertPresetError(f"{source}: unknown key(s) {unknown}")
    if data.get("version") != PRESETS_VERSION:
        raise ExpertPresetError(
            f"{source}: version must be {PRESETS_VERSION}, got {data.get('version')!r}"
        )
    presets_raw = data.get("presets")
    if not isinstance(presets_raw, Mapping) or not presets_raw:
        raise ExpertPresetError(f"{source}: 'presets' must be a non-empty mapping of names")
    presets: dict[str, ExpertPreset] = {}
    for name, spec in presets_raw.items():
        where = f"{source}: preset {name!r}"
        if not isinstance(name, str) or not name:
            raise ExpertPresetError(f"{source}: preset names must be non-empty strings: {name!r}")
        if not isinstance(spec, Mapping):
            raise ExpertPresetError(f"{where}: must be a mapping")
        unknown = sorted(set(spec) - {"description", "weights", "fill", "experts"})
        if unknown:
            raise ExpertPresetError(f"{where}: unknown key(s) {unknown}")
        description = spec.get("description", "")
        if not isinstance(description, str):
            raise ExpertPresetError(f"{where}: description must be text")
        if "weights" in spec:
            if "fill" in spec or "experts" in spec:
                raise ExpertPresetError(f"{where}: give either 'weights' or 'fill'/'experts'")
            ws = spec["weights"]
            if not isinstance(ws, list) or not ws:
                raise ExpertPresetError(f"{where}: weights must be a non-empty list")
            weights = tuple(_number(v, f"{where} weights[{i}]") for i, v in enumerate(ws))
            preset = ExpertPreset(name, description, weights=weights)
            validate = len(weights)
        elif "fill" in spec:
            fill = _number(spec["fill"], f"{where} fill")
            experts_raw = spec.get("experts", {}) or {}
            if not isinstance(experts_raw, Mapping):
                raise ExpertPresetError(f"{where}: experts must map expert index -> weight")
            experts: dict[int, float] = {}
            for k, v in experts_raw.items():
                if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                    raise ExpertPresetError(f"{where}: expert index must be an integer >= 0: {k!r}")
                experts[k] = _number(v, f"{where} experts[{k}]")
            preset = ExpertPreset(name, description, fill=fill, experts=experts)
            validate = max(experts, default=0) + 1
        else:
            raise ExpertPresetError(f"{where}: needs 'weights' or 'fill'")
        try:  # the rules that do not depend on the policy (finite, >= 0, not all zero)
            preset.resolve(validate)
        except ValueError as e:
            raise ExpertPresetError(f"{source}: {e}") from None
        presets[name] = preset
    return presets


def default_presets_path() -> Path:
    """``config/expert_presets.yaml`` of this package: the source tree, else the ament share."""
    here = Path(__file__).resolve().parents[2] / "config" / PRESETS_FILE
    if here.is_file():
        return here
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory("moe_loco_controller"))
        return share / "config" / PRESETS_FILE
    except (ImportError, LookupError):  # no ament index, or not installed there
        return here


def load_expert_presets(path: str | os.PathLike[str] | None = None) -> dict[str, ExpertPreset]:
    """Read and validate a presets file (default: :func:`default_presets_path`)."""
    p = Path(path) if path is not None else default_presets_path()
    try:
        text = p.read_text()
    except OSError as e:
        raise ExpertPresetError(f"cannot read expert presets {p}: {e.strerror or e}") from None
    try:
        data = load_strict_yaml(text)
    except ValueError as e:
        raise ExpertPresetError(f"{p}: {e}") from None
    return parse_expert_presets(data, str(p))
