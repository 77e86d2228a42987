"""The observation builder: robot state + last action + command -> the policy's input vectors.

Everything comes from the policy's metadata (:class:`~.policy_metadata.ObservationSpec`): which
terms, in which order, with which scales, the joint order, the default pose and the gaits. The term
vocabulary (what ``joint_pos`` means) is defined here and in ``policy_metadata``; training computes
the same terms from simulator tensors. Pure numpy.

Proprio terms (policy joint order for the per-joint ones):

- ``projected_gravity``: the unit gravity vector (0, 0, -1) expressed in the base frame, from the
  IMU quaternion (w, x, y, z);
- ``base_ang_vel``: the gyroscope's angular velocity in the base frame [rad/s];
- ``joint_pos``: joint positions minus ``default_joint_pos`` [rad];
- ``joint_vel``: joint velocities [rad/s];
- ``last_action``: the previous policy action after clipping to ``action_clip`` (raw, unscaled by
  ``action_scale``).

Command terms: ``velocity`` = (vx, vy, wz) [m/s, m/s, rad/s]; ``gait`` = one-hot over ``gaits``.
Each value is multiplied by its term's scale and then clipped to +-``observation.clip``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from moe_loco_controller.core.joint_order import JointOrder
from moe_loco_controller.core.policy_metadata import PolicyMetadata
from moe_loco_controller.core.robot_state import RobotState


def projected_gravity(quat_wxyz: np.ndarray) -> np.ndarray:
    """Gravity direction (0, 0, -1) of the world in the base frame, for a unit quaternion w,x,y,z.

    This is R(q)^T (0, 0, -1): the third row of R negated.
    """
    w, x, y, z = (float(v) for v in quat_wxyz)
    return np.array(
        [-2.0 * (x * z - w * y), -2.0 * (y * z + w * x), -(1.0 - 2.0 * (x * x + y * y))]
    )


class ObservationBuilder:
    """Builds the ``proprio`` and ``command`` vectors of one policy, as its metadata says."""

    def __init__(self, metadata: PolicyMetadata) -> None:
        self.metadata = metadata
        self.joint_order = JointOrder(metadata.joint_names)
        self._from_sdk = self.joint_order.from_sdk  # SDK order -> policy order
        self._default = np.asarray(metadata.default_joint_pos, dtype=np.float64)
        spec = metadata.observation
        self.proprio_dim = spec.proprio_dim
        self.command_dim = spec.command_dim
        self._clip = spec.clip
        self._proprio_writers: list[tuple[slice, np.ndarray, Callable[..., np.ndarray]]] = []
        getters: dict[str, Callable[[RobotState, np.ndarray], np.ndarray]] = {
            "projected_gravity": lambda s, a: projected_gravity(s.quat_wxyz),
            "base_ang_vel": lambda s, a: np.asarray(s.gyro, dtype=np.float64),
            "joint_pos": lambda s, a: self._from_sdk(np.asarray(s.q)) - self._default,
            "joint_vel": lambda s, a: self._from_sdk(np.asarray(s.dq)),
            "last_action": lambda s, a: a,
        }
        offsets = spec.offsets("proprio")
        for term in spec.proprio:
            self._proprio_writers.append((offsets[term.name], term.scale, getters[term.name]))
        self._command_terms = [(spec.offsets("command")[t.name], t) for t in spec.command]

    def proprio(
        self, state: RobotState, last_action: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """The proprioception vector p_t, float32 (proprio_dim,).

        ``state`` is in SDK joint order; ``last_action`` is the previous action in the POLICY's
        joint order, after clipping (zeros before the first step). Written into ``out`` if given.
        """
        last_action = np.asarray(last_action, dtype=np.float64)
        if last_action.shape != (self.metadata.num_joints,):
            raise ValueError(
                f"last_action must have shape ({self.metadata.num_joints},), "
                f"got {last_action.shape}"
            )
        if out is None:
            out = np.empty(self.proprio_dim, dtype=np.float32)
        for where, scale, get in self._proprio_writers:
            out[where] = get(state, last_action) * scale
        if self._clip is not None:
            np.clip(out, -self._clip, self._clip, out=out)
        return out

    def command(
        self, vx: float, vy: float, wz: float, gait: str | int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """The command vector c_t, float32 (command_dim,): scaled velocity and gait one-hot.

        The velocity is used as given: limiting it to the policy's ``command_ranges`` is the
        command logic's job (:func:`clip_command`).
        """
        g = self.metadata.gait_index(gait)
        if out is None:
            out = np.empty(self.command_dim, dtype=np.float32)
        for where, term in self._command_terms:
            if term.name == "velocity":
                value = np.array([vx, vy, wz], dtype=np.float64)
            else:  # gait
                value = np.zeros(term.dim)
                value[g] = 1.0
            out[where] = value * term.scale
        if self._clip is not None:
            np.clip(out, -self._clip, self._clip, out=out)
        return out


def clip_command(
    metadata: PolicyMetadata, vx: float, vy: float, wz: float, gait: str | int
) -> tuple[float, float, float]:
    """(vx, vy, wz) limited to the policy's ``command_ranges`` for ``gait``."""
    ranges = metadata.command_ranges[metadata.gaits[metadata.gait_index(gait)]]
    return tuple(  # type: ignore[return-value]
        float(min(max(v, ranges[ax][0]), ranges[ax][1]))
        for v, ax in zip((vx, vy, wz), ("vx", "vy", "wz"), strict=True)
    )
