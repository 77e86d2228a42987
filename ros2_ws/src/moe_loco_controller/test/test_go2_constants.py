import numpy as np
import pytest

from moe_loco_controller.core import go2
from moe_loco_controller.core.joint_order import JointOrder, JointOrderError


def test_sdk_joint_order_is_unitrees():
    assert go2.JOINT_NAMES[:3] == ("FR_hip_joint", "FR_thigh_joint", "FR_calf_joint")
    assert go2.JOINT_NAMES[3] == "FL_hip_joint"
    assert go2.JOINT_NAMES[6] == "RR_hip_joint"
    assert go2.JOINT_NAMES[9:] == ("RL_hip_joint", "RL_thigh_joint", "RL_calf_joint")
    assert len(set(go2.JOINT_NAMES)) == 12


def test_limits_match_go2_facts():
    # go2_facts.md section 2, SDK order
    assert go2.JOINT_LOWER[1] == pytest.approx(-1.5708) and go2.JOINT_UPPER[1] == pytest.approx(
        3.4907
    )
    assert go2.JOINT_LOWER[7] == pytest.approx(-0.5236) and go2.JOINT_UPPER[7] == pytest.approx(
        4.5379
    )
    assert go2.JOINT_LOWER[11] == pytest.approx(-2.7227) and go2.JOINT_UPPER[11] == pytest.approx(
        -0.83776
    )
    assert np.all(go2.JOINT_LOWER < go2.JOINT_UPPER)
    assert go2.TORQUE_LIMIT[2] == pytest.approx(45.43) and go2.TORQUE_LIMIT[0] == pytest.approx(
        23.7
    )
    assert np.all(
        (go2.DEFAULT_STANDING_POSE > go2.JOINT_LOWER)
        & (go2.DEFAULT_STANDING_POSE < go2.JOINT_UPPER)
    )
    # left legs hip +0.1, right legs -0.1
    assert go2.DEFAULT_STANDING_POSE[go2.JOINT_NAMES.index("FL_hip_joint")] == pytest.approx(0.1)
    assert go2.DEFAULT_STANDING_POSE[go2.JOINT_NAMES.index("RR_hip_joint")] == pytest.approx(-0.1)


def test_urdf_order_maps_by_name_to_the_fields_known_index():
    order = JointOrder(go2.URDF_JOINT_NAMES)
    # walk-these-ways and rl_sar carry this map between the URDF and SDK orders
    np.testing.assert_array_equal(order.to_sdk_index, [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8])
    x = np.arange(12.0)
    sdk = order.to_sdk(x)
    for i, name in enumerate(go2.JOINT_NAMES):
        assert sdk[i] == go2.URDF_JOINT_NAMES.index(name)
    np.testing.assert_array_equal(order.from_sdk(sdk), x)
    assert not order.is_identity
    assert JointOrder(go2.JOINT_NAMES).is_identity


def test_joint_order_batches():
    order = JointOrder(go2.URDF_JOINT_NAMES)
    x = np.random.default_rng(0).normal(size=(5, 12))
    np.testing.assert_array_equal(order.from_sdk(order.to_sdk(x)), x)


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (list(go2.JOINT_NAMES[:-1]) + ["FR_hip_joint"], "duplicate"),
        (
            list(go2.JOINT_NAMES[:-1]) + ["RL_knee_joint"],
            "unknown.*RL_knee_joint.*missing.*RL_calf_joint",
        ),
        (list(go2.JOINT_NAMES[:-1]), "missing.*RL_calf_joint"),
    ],
)
def test_joint_order_refuses_bad_names(names, match):
    with pytest.raises(JointOrderError, match=match):
        JointOrder(names)


def test_joint_order_refuses_wrong_length():
    with pytest.raises(JointOrderError, match="12 joints"):
        JointOrder(go2.JOINT_NAMES).to_sdk(np.zeros(11))
