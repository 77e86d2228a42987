"""The terrain curriculum: robots move between difficulty levels of their task at each reset.

Obstacle tiles (legged_gym's game-inspired rule): a robot that went further than
``promote_fraction`` of its tile's course (spawn to the last obstacle) is promoted; one that went
less than ``demote_fraction`` of what its forward command asked for (speed x episode time, at most
the course) is demoted. Plane tiles have no obstacle to measure progress by; their level scales
the velocity command range instead (``commands.plane_min_scale``), and a robot is promoted when
its episode ran to the time-out while tracking its command (mean tracking factor of at least
``plane_promote_tracking``: legged_gym widens its command ranges on tracking, not on survival)
and demoted when it terminated. A robot promoted past the top
level is sent to a random level (so the top keeps being revisited, not saturated). Levels stay
within ``0 .. levels - 1``. Arrays are numpy or torch (``moe_loco_training.env.arrays``), ``rng``
the environment's random source of the same kind.
"""

from __future__ import annotations

from typing import Any

from moe_loco_training.env.arrays import Array, const, namespace
from moe_loco_training.env.config import CurriculumConfig


def update_levels(
    level: Array,
    is_plane: Array,
    distance: Array,
    course: Array,
    commanded: Array,
    timed_out: Array,
    levels: int,
    config: CurriculumConfig,
    rng: Any,
    tracking: Array | None = None,
) -> tuple[Array, Array, Array]:
    """New levels of the robots being reset, with the promote and demote masks.

    All arrays are per reset robot: current ``level``, whether its tile is a plane, forward
    ``distance`` from its spawn [m], its tile's ``course`` length [m], the ``commanded`` forward
    distance (speed x time) [m], whether its episode ``timed_out`` (rather than terminated), and its
    episode's mean linear-velocity ``tracking`` factor (plane tiles; None counts as tracked).
    """
    xp = namespace(level, distance)
    obstacle = ~is_plane
    if tracking is None:
        tracked = const(True, level, "bool")
    else:
        tracked = tracking >= config.plane_promote_tracking
    promote = xp.where(obstacle, distance > config.promote_fraction * course, timed_out & tracked)
    demote = xp.where(
        obstacle,
        distance < config.demote_fraction * xp.minimum(commanded, course),
        ~timed_out,
    )
    demote &= ~promote
    new = level + xp.astype(promote, xp.int64) - xp.astype(demote, xp.int64)
    top = new >= levels
    n_top = int(xp.sum(xp.astype(top, xp.int64)))
    if n_top:
        new[top] = rng.integers(0, levels, n_top)
    return xp.clip(new, 0, levels - 1), promote, demote
