"""The one check before the wire (float32-finite, targets in range + margin, gain limits), and the
policies refused at load because their metadata could only produce commands it refuses."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moe_loco_controller.core import go2
from moe_loco_controller.core.command_guard import (
    TARGET_LOWER,
    TARGET_UPPER,
    check_policy_bounds,
    clamp_targets,
    command_problems,
)
from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_controller.core.policy_metadata import PolicyFileError
from moe_loco_controller.core.robot_state import JointCommand


def pd(q=None, kp=40.0, kd=0.5, dq=0.0, tau=0.0):
    return JointCommand(
        q=np.array(go2.DEFAULT_STANDING_POSE if q is None else q, dtype=float),
        dq=np.full(12, dq),
        kp=np.full(12, kp),
        kd=np.full(12, kd),
        tau=np.full(12, tau),
    )


def test_what_the_core_sends_passes():
    assert command_problems(pd()) == ()
    assert command_problems(JointCommand.damping(2.0)) == ()  # q 0 with kp 0 holds nothing
    assert command_problems(JointCommand.zero_torque()) == ()  # PosStopF / VelStopF idle
    edge = pd(q=TARGET_UPPER)
    assert command_problems(edge) == ()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"kp": 1e39}, "kp not finite as float32"),  # finite in float64, inf on the wire
        ({"kd": 1e39}, "kd not finite as float32"),
        ({"kp": 1e9}, "kp outside [0, 200]"),
        ({"kp": -1.0}, "kp outside [0, 200]"),
        ({"kd": 11.0}, "kd outside [0, 10]"),
        ({"tau": 50.0}, "tau beyond the torque limit"),
        ({"q": np.full(12, 1e6)}, "q target beyond the joint range + 0.1 rad"),
        ({"q": np.full(12, 5e30)}, "q target beyond the joint range"),
        ({"q": np.full(12, np.nan)}, "q not finite as float32"),
        ({"dq": 100.0}, "dq target beyond the velocity limit"),
    ],
)
def test_out_of_bounds_commands_are_refused_naming_field_and_joint(change, expected):
    problems = command_problems(pd(**change))
    assert problems and expected in problems[0], problems
    assert "FR_hip_joint" in problems[0]


def test_clamp_targets_keeps_them_inside_range_plus_margin():
    q = clamp_targets(np.full(12, 1e30))
    np.testing.assert_array_equal(q, TARGET_UPPER)
    np.testing.assert_array_equal(clamp_targets(np.full(12, -1e30)), TARGET_LOWER)
    assert command_problems(pd(q=q)) == ()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"default_joint_pos": [1e6] * 12}, "default_joint_pos[0]"),
        ({"action_scale": 1e30}, "action_scale[0]"),
        ({"kp": 1e9}, "kp[0]"),
        ({"kp": 1e39}, "kp"),  # beyond float32: refused by the parser already
        ({"kd": 1e39}, "kd"),
        ({"action_scale": 1e300}, "action_scale"),
        ({"kd": 50.0}, "kd[0]"),
    ],
)
def test_policies_whose_metadata_exceeds_the_bounds_are_refused_at_load(
    make_policy, changes, field
):
    path = make_policy(meta_changes=changes)
    with pytest.raises(PolicyFileError) as e:
        PolicyRuntime(path)
    assert e.value.field == field, str(e.value)
    assert str(path) in str(e.value)


def test_policy_bounds_name_the_joint(make_policy, urdf_order):
    from policy_factory import metadata

    meta = metadata(urdf_order)
    bad = meta.default_joint_pos.copy()
    bad[2] = 0.0  # FL calf (URDF order index 2): its range is [-2.72, -0.84]
    import dataclasses

    with pytest.raises(PolicyFileError, match=r"FL_calf_joint") as e:
        check_policy_bounds(dataclasses.replace(meta, default_joint_pos=bad))
    assert e.value.field == "default_joint_pos[2]"


component = st.one_of(
    st.floats(width=32, allow_nan=True, allow_infinity=True),
    st.floats(-3.0, 3.0),
    st.sampled_from([0.0, 40.0, 200.0, 200.5, 10.0, 10.01, go2.POS_STOP_F, go2.VEL_STOP_F, 1e39]),
)


@given(values=st.lists(st.lists(component, min_size=12, max_size=12), min_size=5, max_size=5))
@settings(max_examples=150, deadline=None, database=None, derandomize=True)
def test_the_fast_path_agrees_with_the_itemised_check(values):
    from moe_loco_controller.core.command_guard import _fits, _problems

    cmd = JointCommand(*(np.array(v) for v in values))
    assert _fits(cmd) == (not _problems(cmd))
