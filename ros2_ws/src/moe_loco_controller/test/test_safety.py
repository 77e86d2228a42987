import math

import numpy as np
import pytest

from moe_loco_controller.core.observation import projected_gravity
from moe_loco_controller.core.robot_state import RobotState
from moe_loco_controller.core.safety import (
    Fault,
    SafetyLimits,
    state_faults,
    tilt_angles,
    tilt_exceeded,
)

LIM = SafetyLimits()


def quat_rpy(roll=0.0, pitch=0.0, yaw=0.0):
    """w, x, y, z of R = Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return np.array(
        [
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        ]
    )


def g_of(roll=0.0, pitch=0.0):
    return projected_gravity(quat_rpy(roll, pitch))


@pytest.mark.parametrize("angle", [-1.4, -0.7, 0.0, 0.3, 1.2])
def test_tilt_angles_equal_euler_angles_in_single_axis_tilts(angle):
    assert tilt_angles(g_of(roll=angle))[0] == pytest.approx(angle, abs=1e-9)
    # positive pitch about y: nose down
    assert tilt_angles(g_of(pitch=angle))[1] == pytest.approx(angle, abs=1e-9)


def test_quadrupedal_limits_are_the_papers():
    assert not tilt_exceeded(g_of(roll=0.99), "quadrupedal", LIM)
    assert tilt_exceeded(g_of(roll=1.01), "quadrupedal", LIM)
    assert tilt_exceeded(g_of(roll=-1.01), "quadrupedal", LIM)
    assert not tilt_exceeded(g_of(pitch=1.55), "quadrupedal", LIM)
    # past vertical: "pitch > 1.6" can fire (ZYX Euler pitch never would)
    upside = projected_gravity(quat_rpy(math.pi, 0.0))
    assert tilt_exceeded(upside, "quadrupedal", LIM)
    g = np.array([math.sin(1.65), 0.0, math.cos(1.65) * -1])  # nose 1.65 rad down
    assert tilt_angles(g)[1] == pytest.approx(1.65)
    assert tilt_exceeded(g, "quadrupedal", LIM)


def test_bipedal_limits_allow_the_whole_stand_up():
    for a in np.linspace(0.0, math.pi / 2, 20):  # from four legs to nose straight up
        assert not tilt_exceeded(g_of(pitch=-a), "bipedal", LIM), a
    # faceplant, sideways fall, onto the back
    assert tilt_exceeded(g_of(pitch=0.6), "bipedal", LIM)
    assert tilt_exceeded(g_of(pitch=-math.pi / 2 - 0.9), "bipedal", LIM)
    assert not tilt_exceeded(g_of(pitch=-math.pi / 2 - 0.7), "bipedal", LIM)
    standing = quat_rpy(0.0, -math.pi / 2)
    side = projected_gravity(
        # standing, then fallen 1.1 rad about the world x axis
        np.array(
            [
                math.cos(0.55) * standing[0] - math.sin(0.55) * standing[1],
                math.cos(0.55) * standing[1] + math.sin(0.55) * standing[0],
                math.cos(0.55) * standing[2] - math.sin(0.55) * standing[3],
                math.cos(0.55) * standing[3] + math.sin(0.55) * standing[2],
            ]
        )
    )
    assert tilt_exceeded(side, "bipedal", LIM)


def test_gait_transition_counts_only_a_tilt_past_both_gaits():
    nose_up = g_of(pitch=-1.65)  # standing slightly past vertical: bipedal ok, quadrupedal not
    assert tilt_exceeded(nose_up, "quadrupedal", LIM)
    assert not tilt_exceeded(nose_up, "quadrupedal", LIM, previous_gait="bipedal")
    assert tilt_exceeded(g_of(roll=1.2), "quadrupedal", LIM, previous_gait="bipedal")
    with pytest.raises(ValueError, match="no tilt limits for gait 'tripod'"):
        tilt_exceeded(nose_up, "tripod", LIM)


def faults(state, now=0.0, gait="quadrupedal", **kw):
    return {f for f, _ in state_faults(state, now, 0.02, gait, LIM, **kw)}


def test_state_faults():
    assert faults(None) == {Fault.NO_STATE}
    assert faults(RobotState.nominal(stamp=0.0)) == set()
    assert faults(RobotState.nominal(stamp=0.0), now=0.059) == set()
    assert faults(RobotState.nominal(stamp=0.0), now=0.061) == {Fault.STALE_STATE}
    q = RobotState.nominal().q.copy()
    q[3] = np.nan
    assert faults(RobotState.nominal(q=q)) == {Fault.BAD_STATE}
    q = RobotState.nominal().q.copy()
    q[2] = -0.5  # calf 0.34 rad above its range
    assert faults(RobotState.nominal(q=q)) == {Fault.JOINT_RANGE}
    tilted = RobotState(**{**RobotState.nominal().__dict__, "quat_wxyz": quat_rpy(roll=1.2)})
    assert faults(tilted) == {Fault.TILT}
    assert faults(tilted, check_tilt=False) == set()


@pytest.mark.parametrize("field", ["quad_roll", "stale_state_periods", "joint_margin"])
@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, "1"])
def test_limits_validation(field, value):
    with pytest.raises(ValueError, match=f"safety.{field}"):
        SafetyLimits(**{field: value})


def test_the_supervisors_margin_not_the_wire_layers_decides():
    q = RobotState.nominal().q.copy()
    q[2] = -0.83776 + 0.15  # 0.15 rad past the calf's range: flagged by the wire layer (0.1)...
    flagged = RobotState(**{**RobotState.nominal(q=q).__dict__, "problems": ("q out of range",)})
    assert faults(flagged) == set()  # ...but within the supervisor's 0.2 rad margin
    assert faults(flagged, check_tilt=False) == set()
    q[2] = -0.83776 + 0.25
    assert faults(RobotState.nominal(q=q)) == {Fault.JOINT_RANGE}
