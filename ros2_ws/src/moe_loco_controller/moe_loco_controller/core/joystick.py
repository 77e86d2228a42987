"""Joystick logic: gamepad or Go2-remote input -> the operator command. Pure; the caller clocks it.

Input is a :class:`JoyInput`: the logical buttons held and three stick values in [-1, 1] (forward,
left, counter-clockwise). ``sensor_msgs/Joy`` and the Go2 remote's bytes are turned into it by a
:class:`JoyMapping` / :func:`remote_input`, so the same rules serve both:

- the deadman must be held for any velocity; released, the velocity target is zero at once;
- the gait toggles once per press of its button (edge, with a debounce interval);
- e-stop is reported while held (the controller latches DAMP); stand, run and reset are
  requested on the press edge;
- velocity = stick x the policy's range for the active gait (max for positive, -min for negative),
  after a deadzone, then rate-limited (``max_accel``);
- no input for ``lost_timeout_s``: zero velocity and deadman off; for ``lost_damp_s`` (> 0): DAMP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from moe_loco_controller.core.controller import OperatorCommand, Request
from moe_loco_controller.core.remote import key_pressed

BUTTONS = ("deadman", "gait_toggle", "estop", "stand", "run", "reset")
"""Logical buttons."""


@dataclass(frozen=True)
class JoyInput:
    """One joystick sample: logical buttons held, sticks (forward, left, ccw) in [-1, 1]."""

    buttons: frozenset[str]
    sticks: tuple[float, float, float]
    stamp: float


@dataclass(frozen=True)
class JoyMapping:
    """``sensor_msgs/Joy`` indices of a gamepad. Default: an Xbox-style pad under Linux's xpad
    driver as the ROS ``joy`` node reports it (axes 0 LX, 1 LY, 3 RX; buttons 0 A, 1 B, 3 Y,
    4 LB, 6 back, 7 start); sticks are +1 up and left in that convention."""

    axis_vx: int = 1
    axis_vy: int = 0
    axis_wz: int = 3
    sign_vx: float = 1.0
    sign_vy: float = 1.0
    sign_wz: float = 1.0
    buttons: Mapping[str, int] = field(
        default_factory=lambda: {
            "deadman": 4,
            "gait_toggle": 3,
            "estop": 1,
            "stand": 7,
            "run": 0,
            "reset": 6,
        }
    )

    def __post_init__(self) -> None:
        unknown = set(self.buttons) - set(BUTTONS)
        missing = set(BUTTONS) - set(self.buttons)
        if unknown or missing:
            raise ValueError(
                f"joystick button map: unknown {sorted(unknown)}, missing {sorted(missing)}"
            )
        for name, idx in [
            *self.buttons.items(),
            ("axis_vx", self.axis_vx),
            ("axis_vy", self.axis_vy),
            ("axis_wz", self.axis_wz),
        ]:
            if not isinstance(idx, int) or idx < 0:
                raise ValueError(f"joystick map {name} must be an index >= 0, got {idx!r}")

    def joy_input(self, axes: Sequence[float], buttons: Sequence[int], stamp: float) -> JoyInput:
        """Convert one ``sensor_msgs/Joy`` (axes, buttons); missing indices read as 0."""

        def axis(i: int) -> float:
            v = float(axes[i]) if i < len(axes) else 0.0
            return v if math.isfinite(v) else 0.0

        held = frozenset(n for n, i in self.buttons.items() if i < len(buttons) and buttons[i])
        sticks = (
            self.sign_vx * axis(self.axis_vx),
            self.sign_vy * axis(self.axis_vy),
            self.sign_wz * axis(self.axis_wz),
        )
        return JoyInput(held, sticks, stamp)


REMOTE_BUTTONS: Mapping[str, str] = {
    "deadman": "L1",
    "gait_toggle": "Y",
    "estop": "select",
    "stand": "start",
    "run": "A",
    "reset": "X",
}
"""Go2 remote keys of the logical buttons."""


def remote_input(keys: int, axes: np.ndarray, stamp: float) -> JoyInput:
    """A Go2-remote sample (keys bitfield, axes lx, ly, rx, ry, L2) as a :class:`JoyInput`.

    ly forward is +vx; lx and rx are positive to the right, so vy = -lx and wz = -rx.
    """
    held = frozenset(b for b, k in REMOTE_BUTTONS.items() if key_pressed(keys, k))
    lx, ly, rx = (float(a) if math.isfinite(a) else 0.0 for a in axes[:3])
    return JoyInput(held, (ly, -lx, -rx), stamp)


@dataclass(frozen=True)
class JoystickConfig:
    deadzone: float = 0.05
    max_accel: tuple[float, float, float] = (1.0, 1.0, 2.0)
    """Rate limit of the velocity command [m/s^2, m/s^2, rad/s^2]."""
    debounce_s: float = 0.25
    """A gait toggle less than this after the previous one is ignored."""
    lost_timeout_s: float = 0.5
    lost_damp_s: float = 1.5
    """No input for this long requests DAMP; 0 disables."""

    def __post_init__(self) -> None:
        if not 0 <= self.deadzone < 1:
            raise ValueError(f"joystick.deadzone must be in [0, 1), got {self.deadzone}")
        if len(self.max_accel) != 3 or not all(a > 0 for a in self.max_accel):
            raise ValueError(f"joystick.max_accel must be 3 numbers > 0, got {self.max_accel}")
        for name in ("debounce_s", "lost_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"joystick.{name} must be > 0")
        if self.lost_damp_s < 0:
            raise ValueError("joystick.lost_damp_s must be >= 0")


class JoystickLogic:
    """Turns joystick samples into operator commands at the caller's rate."""

    def __init__(
        self,
        command_ranges: Mapping[int, Mapping[str, tuple[float, float]]],
        config: JoystickConfig | None = None,
        gait: int = 0,
    ) -> None:
        """``command_ranges``: per gait index, {"vx": (min, max), "vy": ..., "wz": ...}."""
        self.ranges = command_ranges
        self.config = config or JoystickConfig()
        self.gait = gait
        self._velocity = np.zeros(3)
        self._held: frozenset[str] = frozenset()
        self._last_input: JoyInput | None = None
        self._last_toggle = -math.inf
        self._last_update: float | None = None
        self.toggles = 0

    def feed(self, sample: JoyInput) -> Request:
        """Take one input sample; return the request its press edges make (NONE, or one)."""
        pressed = sample.buttons - self._held
        self._held = sample.buttons
        self._last_input = sample
        if "gait_toggle" in pressed and sample.stamp - self._last_toggle >= self.config.debounce_s:
            self._last_toggle = sample.stamp
            self.gait = (
                1 - self.gait if len(self.ranges) == 2 else (self.gait + 1) % len(self.ranges)
            )
            self.toggles += 1
        for name, req in (("reset", Request.RESET), ("stand", Request.STAND), ("run", Request.RUN)):
            if name in pressed:
                return req
        return Request.NONE

    def command(self, now: float, request: Request = Request.NONE) -> OperatorCommand:
        """The operator command at ``now`` (call at a steady rate; the rate limit uses the dt)."""
        c = self.config
        dt = 0.0 if self._last_update is None else max(0.0, now - self._last_update)
        self._last_update = now
        sample = self._last_input
        age = math.inf if sample is None else now - sample.stamp
        lost = age > c.lost_timeout_s
        deadman = not lost and sample is not None and "deadman" in sample.buttons
        estop = not lost and sample is not None and "estop" in sample.buttons
        target = np.zeros(3)
        if deadman:
            assert sample is not None
            ranges = self.ranges[self.gait]
            for i, (stick, ax) in enumerate(zip(sample.sticks, ("vx", "vy", "wz"), strict=True)):
                s = 0.0 if abs(stick) < c.deadzone else max(-1.0, min(1.0, stick))
                lo, hi = ranges[ax]
                target[i] = s * hi if s >= 0 else -s * lo
            step = np.asarray(c.max_accel) * dt
            self._velocity = self._velocity + np.clip(target - self._velocity, -step, step)
        else:
            self._velocity = np.zeros(3)  # releasing the deadman stops at once
        if c.lost_damp_s > 0 and age > c.lost_damp_s and sample is not None:
            request = Request.DAMP
        vx, vy, wz = (float(v) for v in self._velocity)
        return OperatorCommand(vx, vy, wz, self.gait, int(request), estop, deadman, now)
