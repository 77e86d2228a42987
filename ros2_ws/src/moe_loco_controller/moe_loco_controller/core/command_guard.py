"""The one check every joint command passes before the wire, and the policy bounds it implies.

A :class:`~.robot_state.JointCommand` may reach ``rt/lowcmd`` only if :func:`command_problems`
finds nothing wrong with it. Per motor (SDK order):

- every value is finite as a float32 (LowCmd_ carries float32: 1e39 is finite in float64 and
  infinite, or unpackable, on the wire);
- ``0 <= kp <= KP_MAX`` and ``0 <= kd <= KD_MAX`` (:mod:`.go2`);
- ``|tau| <=`` the motor's torque limit;
- with ``kp > 0``, the position target lies within the joint's range plus ``TARGET_MARGIN``;
- with ``kd > 0``, the velocity target is within the joint's velocity limit;
- a motor with ``kp == 0`` holds no position (its ``q`` is not a target: damping sends 0, zero
  torque sends Unitree's PosStopF), likewise ``dq`` with ``kd == 0``.

:func:`clamp_targets` is how the core keeps its PD targets inside that range, and
:func:`check_policy_bounds` refuses, at load, a policy whose metadata could only produce commands
this check refuses (the field named), so that a policy never loads to be refused on its first step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from moe_loco_controller.core import go2
from moe_loco_controller.core.joint_order import JointOrder
from moe_loco_controller.core.policy_metadata import PolicyFileError, PolicyMetadata
from moe_loco_controller.core.robot_state import JointCommand

F32_MAX = float(np.finfo(np.float32).max)
"""The largest finite float32."""
TARGET_LOWER = go2.JOINT_LOWER - go2.TARGET_MARGIN
"""Lowest position target [rad] per joint, SDK order."""
TARGET_UPPER = go2.JOINT_UPPER + go2.TARGET_MARGIN
"""Highest position target [rad] per joint, SDK order."""
_FIELDS = ("q", "dq", "kp", "kd", "tau")


def f32_finite(a: np.ndarray) -> np.ndarray:
    """Element-wise: finite and within float32's range."""
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(a) & (np.abs(a) <= F32_MAX)


def command_problems(cmd: JointCommand) -> tuple[str, ...]:
    """What makes ``cmd`` unfit for the wire, one line per problem naming field and joint."""
    if _fits(cmd):  # the common case, in a few vector operations (it runs twice a step)
        return ()
    return _problems(cmd)


def _fits(cmd: JointCommand) -> bool:
    try:
        a = np.array((cmd.q, cmd.dq, cmd.kp, cmd.kd, cmd.tau), dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if a.shape != (5, go2.NUM_MOTORS):
        return False
    q, dq, kp, kd, tau = a
    with np.errstate(invalid="ignore"):
        return bool(
            np.abs(a).max() <= F32_MAX  # False for NaN too
            and kp.min() >= 0.0
            and kp.max() <= go2.KP_MAX
            and kd.min() >= 0.0
            and kd.max() <= go2.KD_MAX
            and (np.abs(tau) <= go2.TORQUE_LIMIT).all()
            and ((kp == 0.0) | ((q >= TARGET_LOWER) & (q <= TARGET_UPPER))).all()
            and ((kd == 0.0) | (np.abs(dq) <= go2.VELOCITY_LIMIT)).all()
        )


def _problems(cmd: JointCommand) -> tuple[str, ...]:
    names = go2.JOINT_NAMES
    arrays: dict[str, np.ndarray] = {}
    problems: list[str] = []
    for label in _FIELDS:
        try:
            a = np.asarray(getattr(cmd, label), dtype=np.float64)
        except (TypeError, ValueError):
            problems.append(f"{label} is not numeric")
            continue
        if a.shape != (go2.NUM_MOTORS,):
            problems.append(f"{label} has shape {a.shape}, expected ({go2.NUM_MOTORS},)")
            continue
        bad = ~f32_finite(a)
        if bad.any():
            problems.append(
                f"{label} not finite as float32: "
                + ", ".join(f"{names[i]}={float(a[i])!r}" for i in np.flatnonzero(bad))
            )
        arrays[label] = np.where(bad, np.nan, a)  # reported once: NaN fails no bound below
    if len(arrays) < len(_FIELDS):
        return tuple(problems)

    def out_of(label: str, mask: np.ndarray, why: str) -> None:
        mask &= ~np.isnan(arrays[label])
        if mask.any():
            a = arrays[label]
            problems.append(
                f"{label} {why}: "
                + ", ".join(f"{names[i]}={a[i]:.4g}" for i in np.flatnonzero(mask))
            )

    q, dq, kp, kd, tau = (arrays[k] for k in _FIELDS)
    with np.errstate(invalid="ignore"):
        _bounds(out_of, q, dq, kp, kd, tau)
    return tuple(problems)


def _bounds(
    out_of: Callable[[str, np.ndarray, str], None],
    q: np.ndarray,
    dq: np.ndarray,
    kp: np.ndarray,
    kd: np.ndarray,
    tau: np.ndarray,
) -> None:
    out_of("kp", (kp < 0) | (kp > go2.KP_MAX), f"outside [0, {go2.KP_MAX:g}]")
    out_of("kd", (kd < 0) | (kd > go2.KD_MAX), f"outside [0, {go2.KD_MAX:g}]")
    out_of("tau", np.abs(tau) > go2.TORQUE_LIMIT, "beyond the torque limit")
    out_of(
        "q",
        (kp > 0) & ((q < TARGET_LOWER) | (q > TARGET_UPPER)),
        f"target beyond the joint range + {go2.TARGET_MARGIN:g} rad",
    )
    out_of("dq", (kd > 0) & (np.abs(dq) > go2.VELOCITY_LIMIT), "target beyond the velocity limit")


def clamp_targets(q: np.ndarray) -> np.ndarray:
    """Position targets (SDK order) limited to each joint's range plus ``TARGET_MARGIN``."""
    return np.clip(np.asarray(q, dtype=np.float64), TARGET_LOWER, TARGET_UPPER)


def check_policy_bounds(meta: PolicyMetadata) -> None:
    """Refuse (``PolicyFileError`` naming the field) metadata the command check would refuse.

    The joint names must be the Go2's (checked first, by :class:`JointOrder`); then, per joint in
    the policy's order: the default pose inside the joint's range plus ``TARGET_MARGIN``, the gains
    within ``[0, KP_MAX]`` / ``[0, KD_MAX]``, and ``|action_scale|`` at most the joint's range (a
    unit action moving the target further than the whole range is no position policy). Every
    value finite as float32.
    """
    try:
        JointOrder(meta.joint_names)
    except ValueError as e:
        raise PolicyFileError(str(e), "joint_names") from None
    sdk_of = {i: go2.JOINT_NAMES.index(n) for i, n in enumerate(meta.joint_names)}
    lower, upper = TARGET_LOWER, TARGET_UPPER
    span = go2.JOINT_UPPER - go2.JOINT_LOWER
    checks = (
        ("default_joint_pos", lambda v, j: lower[j] <= v <= upper[j], "outside the joint range"),
        ("kp", lambda v, j: 0.0 <= v <= go2.KP_MAX, f"outside [0, {go2.KP_MAX:g}]"),
        ("kd", lambda v, j: 0.0 <= v <= go2.KD_MAX, f"outside [0, {go2.KD_MAX:g}]"),
        ("action_scale", lambda v, j: abs(v) <= span[j], "larger than the joint's range"),
    )
    for field, ok, why in checks:
        values = np.asarray(getattr(meta, field), dtype=np.float64)
        finite = f32_finite(values)
        for i, v in enumerate(values):
            j = sdk_of[i]
            if not finite[i] or not ok(float(v), j):
                name = meta.joint_names[i]
                if field == "default_joint_pos":
                    why = f"outside {name}'s range + margin [{lower[j]:.4g}, {upper[j]:.4g}] rad"
                elif field == "action_scale":
                    why = f"larger than {name}'s range ({span[j]:.4g} rad)"
                raise PolicyFileError(f"{float(v)!r} is {why} ({name})", f"{field}[{i}]")
