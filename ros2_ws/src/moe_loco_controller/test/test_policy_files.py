"""The newest shipped policy is chosen by the version in its name, not by file time."""

import os
from pathlib import Path

from moe_loco_controller.core.policy_files import newest_policy, policy_version
from moe_loco_controller.nodes.bringup import find_policy


def test_versions_are_read_from_the_names():
    assert policy_version(Path("moe_loco_go2_v1_quad_plane.onnx")) == 1
    assert policy_version(Path("moe_loco_go2_v12.onnx")) == 12
    assert policy_version(Path("policy.onnx")) is None
    assert policy_version(Path("move_v2x.onnx")) is None  # "_v2x" is no version


def test_the_highest_version_wins_whatever_the_file_times(tmp_path):
    names = ["moe_loco_go2_v0_quad_plane.onnx", "moe_loco_go2_v10_all.onnx", "a_v9_b.onnx"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    # the oldest file time for the newest version (as a fresh checkout may give)
    os.utime(tmp_path / "moe_loco_go2_v10_all.onnx", (1, 1))
    assert newest_policy(tmp_path.glob("*.onnx")).name == "moe_loco_go2_v10_all.onnx"
    assert find_policy("", [tmp_path]).name == "moe_loco_go2_v10_all.onnx"
    assert find_policy("x.onnx", [tmp_path]) == Path("x.onnx")


def test_unversioned_files_come_first_and_ties_go_by_name(tmp_path):
    assert newest_policy([Path("zzz.onnx"), Path("a_v0.onnx")]) == Path("a_v0.onnx")
    assert newest_policy([Path("b_v1_x.onnx"), Path("a_v1_y.onnx")]) == Path("b_v1_x.onnx")
    assert newest_policy([]) is None
