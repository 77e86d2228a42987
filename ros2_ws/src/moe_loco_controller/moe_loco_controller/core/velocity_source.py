"""``cmd_vel`` beside the operator command: which velocity the control core gets. Pure; no clock.

The operator command (``<ns>/command``, from the joystick node) stays the only source of modes,
gait, e-stop and the deadman; a ``geometry_msgs/Twist`` on ``cmd_vel`` only ever supplies a
velocity, under these rules (:func:`merge_velocity`):

1. no operator command, or a stale one: the Twist is ignored (the core then gives zero velocity,
   and in STAND/RUN damps after ``control.command_lost_damp_s``); a Twist never keeps the
   operator "alive", never starts the robot and never changes mode or gait;
2. the operator's deadman released: zero velocity, whatever the Twist says (the deadman enables
   cmd_vel, as teleop_twist_joy's enable button does);
3. the operator holding the deadman and moving a stick (a non-zero velocity): the operator's
   velocity; the human always wins;
4. the operator holding the deadman with the sticks neutral: the Twist's velocity, if cmd_vel is
   enabled and the Twist is fresh (arrived at most ``cmd_vel.timeout_s`` ago); a stale Twist
   gives zero velocity, never its last value.

The velocity chosen then goes through the core like any operator velocity: clipped to the
policy's ranges for the active gait, refused (zero used) if not finite.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from moe_loco_controller.core.controller import OperatorCommand
from moe_loco_controller.core.ros_names import check_topic


@dataclass(frozen=True)
class CmdVelConfig:
    """The ``cmd_vel`` section of the controller YAML."""

    enabled: bool = True
    topic: str = "cmd_vel"
    """Relative to the node's namespace (``/cmd_vel`` for a node without one)."""
    stamped: bool = False
    """True: ``geometry_msgs/TwistStamped``; false: ``geometry_msgs/Twist``."""
    timeout_s: float = 0.5
    """A Twist older than this (by its arrival at the controller) gives zero velocity."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.timeout_s) and 0 < self.timeout_s <= 5.0):
            raise ValueError(f"cmd_vel.timeout_s must be in (0, 5], got {self.timeout_s!r}")
        try:
            check_topic(self.topic)
        except ValueError as e:
            raise ValueError(f"cmd_vel.topic: {e}") from None


@dataclass(frozen=True)
class TwistCommand:
    """A velocity from ``cmd_vel``: body frame, forward / left / counter-clockwise."""

    vx: float
    vy: float
    wz: float
    stamp: float
    """When it arrived, on the controller's clock [s]."""


def merge_velocity(
    operator: OperatorCommand | None,
    twist: TwistCommand | None,
    now: float,
    config: CmdVelConfig,
    operator_timeout_s: float,
) -> tuple[OperatorCommand | None, str]:
    """The command the core steps with, and the velocity's source: ``"operator"``, ``"cmd_vel"``
    or ``"none"`` (zero velocity). Only vx, vy, wz of the operator command are ever replaced."""
    if operator is None or not operator.deadman or now - operator.stamp > operator_timeout_s:
        return operator, "none"
    if (operator.vx, operator.vy, operator.wz) != (0.0, 0.0, 0.0):
        return operator, "operator"
    if not config.enabled or twist is None or not 0.0 <= now - twist.stamp <= config.timeout_s:
        return operator, "none"
    return dataclasses.replace(operator, vx=twist.vx, vy=twist.vy, wz=twist.wz), "cmd_vel"
