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
within ``0 .. levels - 1``.
"""

from __future__ import annotations

import numpy as np

from moe_loco_training.env.config import CurriculumConfig


def update_levels(
    level: np.ndarray,
    is_plane: np.ndarray,
    distance: np.ndarray,
    course: np.ndarray,
    commanded: np.ndarray,
    timed_out: np.ndarray,
    levels: int,
    config: CurriculumConfig,
    rng: np.random.Generator,
    tracking: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New levels of the robots being reset, with the promote and demote masks.

    All arrays are per reset robot: current ``level``, whether its tile is a plane, forward
    ``distance`` from its spawn [m], its tile's ``course`` length [m], the ``commanded`` forward
    distance (speed x time) [m], whether its episode ``timed_out`` (rather than terminated), and its
    episode's mean linear-velocity ``tracking`` factor (plane tiles; None counts as tracked).
    """
    obstacle = ~is_plane
    if tracking is None:
        tracked = np.ones(len(level), dtype=bool)
    else:
        tracked = tracking >= config.plane_promote_tracking
    promote = np.where(obstacle, distance > config.promote_fraction * course, timed_out & tracked)
    demote = np.where(
        obstacle,
        distance < config.demote_fraction * np.minimum(commanded, course),
        ~timed_out,
    )
    demote &= ~promote
    new = level + promote.astype(np.int64) - demote.astype(np.int64)
    top = new >= levels
    if top.any():
        new[top] = rng.integers(0, levels, int(top.sum()))
    return np.clip(new, 0, levels - 1), promote, demote
