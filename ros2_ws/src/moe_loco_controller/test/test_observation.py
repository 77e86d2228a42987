"""The observation builder: terms, order, scales and joint order all from the policy metadata."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from moe_loco_controller.core import go2
from moe_loco_controller.core.observation import (
    ObservationBuilder,
    clip_command,
    projected_gravity,
)
from moe_loco_controller.core.policy_metadata import PolicyMetadata
from moe_loco_controller.core.robot_state import RobotState

SCALES = {
    "projected_gravity": 1.0,
    "base_ang_vel": 0.25,
    "joint_pos": 1.0,
    "joint_vel": 0.05,
    "last_action": 1.0,
}


def metadata_dict(joint_names=go2.JOINT_NAMES) -> dict:
    """A valid contract-v1 metadata object (no ONNX, no torch needed)."""
    default = dict(zip(go2.JOINT_NAMES, go2.DEFAULT_STANDING_POSE, strict=True))
    nj = len(joint_names)
    return {
        "contract_version": 1,
        "joint_names": list(joint_names),
        "default_joint_pos": [float(default[n]) for n in joint_names],
        "action_scale": 0.25,
        "action_clip": 100.0,
        "kp": 40.0,
        "kd": 0.5,
        "control_dt": 0.02,
        "observation": {
            "proprio": [
                {
                    "name": n,
                    "dim": 3 if n in ("projected_gravity", "base_ang_vel") else nj,
                    "scale": s,
                }
                for n, s in SCALES.items()
            ],
            "command": [
                {"name": "velocity", "dim": 3, "scale": [2.0, 2.0, 0.25]},
                {"name": "gait", "dim": 2, "scale": 1.0},
            ],
            "clip": 100.0,
        },
        "gaits": ["quadrupedal", "bipedal"],
        "command_ranges": {
            "quadrupedal": {"vx": [-1.0, 1.0], "vy": [-0.5, 0.5], "wz": [-1.0, 1.0]},
            "bipedal": {"vx": [-0.3, 0.6], "vy": [-0.2, 0.2], "wz": [-0.5, 0.5]},
        },
        "num_experts": 6,
        "expert_labels": None,
        "inputs": {"proprio": "proprio", "command": "command", "expert_scale": "expert_scale"},
        "outputs": {"actions": "actions", "gate": "gate", "estimate": "estimate"},
        "recurrent": [
            {"input": n, "output": f"{n}_out", "shape": [1, 1, 256]}
            for n in ("est_h", "est_c", "actor_h", "actor_c")
        ],
        "estimate": {"dim": 12, "slices": {"latent": [0, 8], "base_lin_vel": [8, 11]}},
        "training": {
            "code_revision": "unknown",
            "stage": "random-init",
            "iterations": 0,
            "simulator": "none",
            "seed": 0,
        },
    }


def quat_rotate_inverse(q_wxyz: np.ndarray, v: np.ndarray) -> np.ndarray:
    """q* v q with Hamilton products: an independent way to express a world vector in the body."""

    def mul(a, b):
        w1, x1, y1, z1 = a
        w2, x2, y2, z2 = b
        return np.array(
            [
                w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
                w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
            ]
        )

    conj = q_wxyz * np.array([1, -1, -1, -1])
    return mul(mul(conj, np.r_[0.0, v]), q_wxyz)[1:]


def a_state(seed: int = 0) -> RobotState:
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(4)
    return RobotState(
        q=go2.DEFAULT_STANDING_POSE + 0.1 * np.arange(12),  # a distinct value per SDK joint
        dq=np.arange(12, dtype=float) - 5.0,
        tau_est=np.zeros(12),
        quat_wxyz=q / np.linalg.norm(q),
        gyro=np.array([0.4, -0.8, 1.2]),
        accel=np.array([0.0, 0.0, 9.81]),
    )


def test_projected_gravity():
    np.testing.assert_allclose(projected_gravity(np.array([1.0, 0, 0, 0])), [0, 0, -1])
    # rolled +90 degrees about x (the body's y axis now points up): gravity is along body -y
    s = np.sqrt(0.5)
    np.testing.assert_allclose(projected_gravity(np.array([s, s, 0, 0])), [0, -1, 0], atol=1e-12)
    rng = np.random.default_rng(1)
    for _ in range(20):
        q = rng.standard_normal(4)
        q /= np.linalg.norm(q)
        np.testing.assert_allclose(
            projected_gravity(q), quat_rotate_inverse(q, np.array([0.0, 0, -1])), atol=1e-12
        )


def test_proprio_layout_sdk_order():
    meta = PolicyMetadata.from_dict(metadata_dict())
    b = ObservationBuilder(meta)
    state, last = a_state(), np.linspace(-1, 1, 12)
    p = b.proprio(state, last)
    assert p.dtype == np.float32 and p.shape == (42,)
    np.testing.assert_allclose(p[0:3], projected_gravity(state.quat_wxyz), rtol=1e-6)
    np.testing.assert_allclose(p[3:6], 0.25 * state.gyro, rtol=1e-6)
    np.testing.assert_allclose(p[6:18], 0.1 * np.arange(12), atol=1e-6)
    np.testing.assert_allclose(p[18:30], 0.05 * state.dq, rtol=1e-6)
    np.testing.assert_allclose(p[30:42], last, rtol=1e-6)


def test_proprio_maps_joints_by_name_for_a_urdf_ordered_policy():
    meta = PolicyMetadata.from_dict(metadata_dict(go2.URDF_JOINT_NAMES))
    state, last_policy = a_state(), np.linspace(-1, 1, 12)
    p = ObservationBuilder(meta).proprio(state, last_policy)
    for k, name in enumerate(go2.URDF_JOINT_NAMES):
        i = go2.JOINT_NAMES.index(name)
        assert p[6 + k] == pytest.approx(0.1 * i, abs=1e-6), name  # q - default, by name
        assert p[18 + k] == pytest.approx(0.05 * state.dq[i], abs=1e-6), name
    # walk-these-ways / rl_sar carry this index map between the two orders
    assert [go2.JOINT_NAMES.index(n) for n in go2.URDF_JOINT_NAMES] == [
        3,
        4,
        5,
        0,
        1,
        2,
        9,
        10,
        11,
        6,
        7,
        8,
    ]
    np.testing.assert_allclose(p[30:42], last_policy, rtol=1e-6)  # already in policy order


def test_terms_order_and_scales_come_from_metadata():
    d = metadata_dict()
    d["observation"]["proprio"] = [
        {"name": "joint_vel", "dim": 12, "scale": list(np.arange(12) * 0.01)},
        {"name": "base_ang_vel", "dim": 3, "scale": [1.0, 2.0, 3.0]},
        {"name": "last_action", "dim": 12, "scale": 0.5},
    ]
    meta = PolicyMetadata.from_dict(d)
    b = ObservationBuilder(meta)
    assert b.proprio_dim == 27
    state, last = a_state(), np.ones(12)
    p = b.proprio(state, last)
    np.testing.assert_allclose(p[0:12], state.dq * np.arange(12) * 0.01, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(p[12:15], state.gyro * [1, 2, 3], rtol=1e-6)
    np.testing.assert_allclose(p[15:27], 0.5, rtol=1e-6)


def test_clip_after_scaling():
    d = metadata_dict()
    d["observation"]["clip"] = 0.3
    b = ObservationBuilder(PolicyMetadata.from_dict(d))
    p = b.proprio(a_state(), np.full(12, 5.0))
    assert p.max() <= 0.3 + 1e-7 and p.min() >= -0.3 - 1e-7
    np.testing.assert_allclose(p[30:42], 0.3)
    np.testing.assert_allclose(b.command(1.0, 0.0, 0.0, 0), [0.3, 0, 0, 0.3, 0])


def test_command_vector():
    b = ObservationBuilder(PolicyMetadata.from_dict(metadata_dict()))
    c = b.command(0.5, -0.2, 0.8, "quadrupedal")
    assert c.dtype == np.float32
    np.testing.assert_allclose(c, [1.0, -0.4, 0.2, 1.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(b.command(0.0, 0.0, 0.0, "bipedal"), [0, 0, 0, 0, 1])
    np.testing.assert_allclose(b.command(0.0, 0.0, 0.0, 1), [0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="unknown gait 'trot'"):
        b.command(0, 0, 0, "trot")
    with pytest.raises(ValueError, match="out of range"):
        b.command(0, 0, 0, 2)


def test_out_buffer_and_last_action_shape():
    b = ObservationBuilder(PolicyMetadata.from_dict(metadata_dict()))
    out = np.zeros(42, dtype=np.float32)
    res = b.proprio(a_state(), np.zeros(12), out=out)
    assert res is out and np.any(out != 0)
    with pytest.raises(ValueError, match=r"last_action must have shape \(12,\)"):
        b.proprio(a_state(), np.zeros(11))


def test_clip_command_to_gait_ranges():
    meta = PolicyMetadata.from_dict(metadata_dict())
    assert clip_command(meta, 2.0, -1.0, 0.3, "quadrupedal") == (1.0, -0.5, 0.3)
    assert clip_command(meta, 2.0, -1.0, -3.0, "bipedal") == (0.6, -0.2, -0.5)


def test_metadata_json_round_trip():
    meta = PolicyMetadata.from_dict(metadata_dict(go2.URDF_JOINT_NAMES))
    again = PolicyMetadata.from_json(meta.to_json())
    assert again.to_dict() == meta.to_dict()
    assert again.input_shapes()["proprio"] == (1, 42)
    assert again.output_shapes()["gate"] == (1, 6)
    d = copy.deepcopy(metadata_dict())
    d["kp"] = [40.0] * 12
    assert PolicyMetadata.from_dict(d).to_dict()["kp"] == 40.0  # uniform lists print as scalars
