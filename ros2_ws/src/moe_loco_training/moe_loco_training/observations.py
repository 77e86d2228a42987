"""The observation definition shared by training and deployment.

:class:`ObservationConfig` fixes the ordered terms of the proprioception p_t and command c_t and
their scales; :meth:`ObservationConfig.spec` turns it into the contract's
:class:`~moe_loco_controller.core.policy_metadata.ObservationSpec`, which the exporter writes into
the policy file and the controller's numpy builder reads back. :func:`build_proprio` and
:func:`build_command` compute the same vectors from torch tensors, driven by the same spec, so
training and the robot cannot drift apart. Term meanings: ``moe_loco_controller.core.observation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import torch

from moe_loco_controller.core.policy_metadata import ObservationSpec, ObservationTerm

GAITS = ("quadrupedal", "bipedal")
"""Order of the gait one-hot: [1, 0] quadrupedal, [0, 1] bipedal."""

DEFAULT_COMMAND_RANGES: Mapping[str, Mapping[str, tuple[float, float]]] = MappingProxyType(
    {
        "quadrupedal": {"vx": (-1.0, 1.0), "vy": (-0.5, 0.5), "wz": (-1.0, 1.0)},
        "bipedal": {"vx": (-0.3, 0.6), "vy": (-0.2, 0.2), "wz": (-0.5, 0.5)},
    }
)
"""Command ranges per gait [m/s, m/s, rad/s] that training samples from (and the robot clips to)."""


@dataclass(frozen=True)
class ObservationConfig:
    """Scales and ranges of the observation (legged_gym-family values for the Go2)."""

    gravity_scale: float = 1.0
    ang_vel_scale: float = 0.25
    joint_pos_scale: float = 1.0
    joint_vel_scale: float = 0.05
    last_action_scale: float = 1.0
    lin_vel_command_scale: float = 2.0
    ang_vel_command_scale: float = 0.25
    clip: float | None = 100.0
    """Every observation value is clipped to +-clip after scaling (None: no clip)."""
    gaits: tuple[str, ...] = GAITS
    command_ranges: Mapping[str, Mapping[str, tuple[float, float]]] = field(
        default_factory=lambda: DEFAULT_COMMAND_RANGES
    )

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["gaits"] = list(self.gaits)
        d["command_ranges"] = {
            g: {ax: list(r) for ax, r in axes.items()} for g, axes in self.command_ranges.items()
        }
        return d

    @staticmethod
    def from_dict(d: Mapping) -> ObservationConfig:
        d = dict(d)
        d["gaits"] = tuple(d["gaits"])
        d["command_ranges"] = {
            g: {ax: (float(r[0]), float(r[1])) for ax, r in axes.items()}
            for g, axes in d["command_ranges"].items()
        }
        return ObservationConfig(**d)

    def spec(self, num_joints: int = 12) -> ObservationSpec:
        """The ordered terms p_t = [gravity, ang vel, joint pos, joint vel, last action] and
        c_t = [vx, vy, wz, gait one-hot], with their scales."""

        def term(name: str, dim: int, scale: float | list[float]) -> ObservationTerm:
            return ObservationTerm(name, dim, np.broadcast_to(np.asarray(scale, float), (dim,)))

        proprio = (
            term("projected_gravity", 3, self.gravity_scale),
            term("base_ang_vel", 3, self.ang_vel_scale),
            term("joint_pos", num_joints, self.joint_pos_scale),
            term("joint_vel", num_joints, self.joint_vel_scale),
            term("last_action", num_joints, self.last_action_scale),
        )
        v, w = self.lin_vel_command_scale, self.ang_vel_command_scale
        command = (term("velocity", 3, [v, v, w]), term("gait", len(self.gaits), 1.0))
        return ObservationSpec(proprio, command, self.clip)


# ------------------------------------------------------------------------ torch builders
def projected_gravity(quat_wxyz: torch.Tensor) -> torch.Tensor:
    """World gravity direction (0, 0, -1) in the base frame, (..., 4) w,x,y,z -> (..., 3)."""
    w, x, y, z = quat_wxyz.unbind(-1)
    return torch.stack(
        [-2.0 * (x * z - w * y), -2.0 * (y * z + w * x), -(1.0 - 2.0 * (x * x + y * y))], dim=-1
    )


def _assemble(
    terms: tuple[ObservationTerm, ...], values: Mapping[str, torch.Tensor], clip: float | None
) -> torch.Tensor:
    missing = [t.name for t in terms if t.name not in values]
    if missing:
        raise KeyError(f"no values for observation term(s) {missing}")
    parts = []
    for t in terms:
        v = values[t.name]
        if v.shape[-1] != t.dim:
            raise ValueError(f"term {t.name!r} needs {t.dim} values, got shape {tuple(v.shape)}")
        parts.append(v * torch.as_tensor(t.scale, dtype=v.dtype, device=v.device))
    out = torch.cat(parts, dim=-1)
    return out if clip is None else out.clamp(-clip, clip)


def build_proprio(
    spec: ObservationSpec,
    *,
    quat_wxyz: torch.Tensor,
    base_ang_vel: torch.Tensor,
    joint_pos_rel: torch.Tensor,
    joint_vel: torch.Tensor,
    last_action: torch.Tensor,
) -> torch.Tensor:
    """p_t from simulator tensors (..., dim), joint arrays in the POLICY's joint order.

    ``joint_pos_rel`` is the joint position minus the default pose; ``last_action`` the previous
    action after clipping. Terms, order and scales come from ``spec``.
    """
    values = {
        "projected_gravity": projected_gravity(quat_wxyz),
        "base_ang_vel": base_ang_vel,
        "joint_pos": joint_pos_rel,
        "joint_vel": joint_vel,
        "last_action": last_action,
    }
    return _assemble(spec.proprio, values, spec.clip)


def build_command(
    spec: ObservationSpec, velocity: torch.Tensor, gait_index: torch.Tensor
) -> torch.Tensor:
    """c_t from the (..., 3) velocity command (vx, vy, wz) and the integer gait index (...)."""
    gait_dim = next(t.dim for t in spec.command if t.name == "gait")
    one_hot = torch.nn.functional.one_hot(gait_index.long(), gait_dim).to(velocity.dtype)
    return _assemble(spec.command, {"velocity": velocity, "gait": one_hot}, spec.clip)
