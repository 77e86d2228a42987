"""Terminations (Section III-B) and time-outs, vectorised over the robots.

- quadrupedal gait: |roll| > 1.0 rad or |pitch| > 1.6 rad, with roll = atan2(-g_y, -g_z) and
  pitch = atan2(g_x, -g_z) from the projected gravity g (the controller's safety supervisor uses
  the same angles, ``moe_loco_controller.core.safety.tilt_angles``). Right after a switch from the
  bipedal gait the robot is pitched up by design; the tilt counts from ``quad_switch_grace_s``
  after the switch on.
- bipedal gait: any link but the rear feet and calves touching the ground (contact force above
  ``contact_threshold``) once the bipedal command is older than ``bipedal_grace_s`` (1 s).
- a diverged robot terminates too: non-finite values, or an MjData that MuJoCo reset itself
  as unstable (the environment sees its clock restart), so it is never bootstrapped.

Time-outs are not terminations: episode length reached, or the robot left its tile (it crossed
the tile's end, or strayed sideways past its edge). The learner bootstraps their value.

Arrays are numpy or torch (one namespace per call; ``moe_loco_training.env.arrays``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moe_loco_training.env.arrays import Array, namespace, take
from moe_loco_training.env.constants import BIPEDAL, BIPEDAL_FORBIDDEN_LINKS, QUADRUPEDAL

if TYPE_CHECKING:
    from moe_loco_training.env.config import TerminationConfig


def tilt_angles(gravity: Array) -> tuple[Array, Array]:
    """(roll, pitch) [rad], each (N,) in (-pi, pi], from projected gravity (N, 3)."""
    xp = namespace(gravity)
    gx, gy, gz = gravity[:, 0], gravity[:, 1], gravity[:, 2]
    return xp.atan2(-gy, -gz), xp.atan2(gx, -gz)


def quadrupedal_tilt(gravity: Array, config: TerminationConfig) -> Array:
    """(N,) bool: roll or pitch past the paper's quadrupedal limits."""
    xp = namespace(gravity)
    roll, pitch = tilt_angles(gravity)
    return (xp.abs(roll) > config.quad_roll) | (xp.abs(pitch) > config.quad_pitch)


def bipedal_forbidden_contact(link_force: Array, config: TerminationConfig) -> Array:
    """(N,) bool: a link other than the rear calves (with their feet) touches something."""
    xp = namespace(link_force)
    f = xp.linalg.vector_norm(link_force[:, take(BIPEDAL_FORBIDDEN_LINKS, link_force)], axis=2)
    return xp.any(f > config.contact_threshold, axis=1)


def terminated(
    gait: Array,
    gravity: Array,
    link_force: Array,
    gait_time: Array,
    switched_in: Array,
    finite: Array,
    config: TerminationConfig,
) -> Array:
    """(N,) bool: which robots terminate this step.

    ``gait_time``: time since the current gait command began [s]; ``switched_in``: that gait was
    entered by a switch inside the episode (not at the reset); ``finite``: the state is finite.
    """
    quad = (gait == QUADRUPEDAL) & quadrupedal_tilt(gravity, config)
    quad &= ~(switched_in & (gait_time < config.quad_switch_grace_s))
    bip = gait == BIPEDAL
    bip &= gait_time > config.bipedal_grace_s
    bip &= bipedal_forbidden_contact(link_force, config)
    return quad | bip | ~finite


def timed_out(episode_time: Array, episode_length_s: float) -> Array:
    """(N,) bool: the episode reached its length (within float rounding of the step grid)."""
    return episode_time >= episode_length_s - 1e-9


def out_of_tile(x_rel: Array, y_rel: Array, tile_length: float, tile_width: float) -> Array:
    """(N,) bool: the base (tile coordinates) is past the tile's end or beyond its sides."""
    xp = namespace(x_rel, y_rel)
    return (x_rel > tile_length) | (x_rel < 0.0) | (xp.abs(y_rel) > tile_width / 2.0)
