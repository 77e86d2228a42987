"""How actions become joint commands, as training uses it and the policy file records it.

PD target = default_joint_pos + action_scale * clip(action, -action_clip, action_clip), in the
policy's joint order; torque = kp (target - q) - kd dq. The paper's gains: Kp 40, Kd 0.5, 50 Hz.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np

from moe_loco_controller.core import go2

DEFAULT_POSE: Mapping[str, float] = MappingProxyType(
    dict(zip(go2.JOINT_NAMES, (float(v) for v in go2.DEFAULT_STANDING_POSE), strict=True))
)
"""The legged_gym-family Go2 standing pose [rad], by joint name."""

JOINT_ORDERS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"sdk": go2.JOINT_NAMES, "urdf": go2.URDF_JOINT_NAMES}
)
"""Named joint orders a policy can be trained or exported in."""


@dataclass(frozen=True)
class ControlConfig:
    """Joint order, default pose, action scaling and PD gains of a policy."""

    joint_names: tuple[str, ...] = go2.JOINT_NAMES
    """The policy's joint order (its actions and per-joint observations use it)."""
    default_pose: Mapping[str, float] = field(default_factory=lambda: DEFAULT_POSE)
    """Default joint positions [rad] by joint name."""
    action_scale: float = 0.25
    action_clip: float = 100.0
    kp: float = 40.0
    kd: float = 0.5
    control_dt: float = 0.02

    @property
    def default_joint_pos(self) -> np.ndarray:
        """The default pose in the policy's joint order."""
        return np.array([self.default_pose[n] for n in self.joint_names], dtype=np.float64)

    def with_joint_order(self, joint_names: Sequence[str] | str) -> ControlConfig:
        """The same configuration with another joint order (a name from JOINT_ORDERS or a list)."""
        names = JOINT_ORDERS[joint_names] if isinstance(joint_names, str) else tuple(joint_names)
        if sorted(names) != sorted(self.joint_names):
            raise ValueError(f"joint order {list(names)} is not a permutation of the policy's")
        return replace(self, joint_names=tuple(names))

    def to_dict(self) -> dict:
        return {
            "joint_names": list(self.joint_names),
            "default_pose": dict(self.default_pose),
            "action_scale": self.action_scale,
            "action_clip": self.action_clip,
            "kp": self.kp,
            "kd": self.kd,
            "control_dt": self.control_dt,
        }

    @staticmethod
    def from_dict(d: Mapping) -> ControlConfig:
        d = dict(d)
        d["joint_names"] = tuple(d["joint_names"])
        return ControlConfig(**d)
