"""make demo's posture figures (scripts/demo.py): which legs the robot is on, falls, and how long
each gait command took to reach its posture; synthetic sim reports, so each rule can fail."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def demo():
    path = Path(__file__).resolve().parents[4] / "scripts" / "demo.py"
    spec = importlib.util.spec_from_file_location("demo_script", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def report(t, up, nose, z):
    return {"t": t, "upright": up, "nose_up": nose, "base_pos": [0.0, 0.0, z]}


def test_postures(demo):
    truth = [
        report(0.0, 1.0, 0.0, 0.28),  # standing on four legs
        report(0.1, 0.7, 0.7, 0.30),  # rearing up, 45 degrees
        report(0.2, 0.1, 0.99, 0.41),  # on the rear legs
        report(0.3, 0.05, 0.1, 0.20),  # on its side
        report(0.4, 1.0, 0.0, 0.10),  # lying flat
    ]
    assert list(demo.postures(truth)) == ["four", "between", "rear", "fallen", "fallen"]


def test_gait_changes_time_the_stand_up_and_the_drop(demo):
    ct = np.arange(0.0, 6.0, 0.02)
    modes = ["STAND" if t < 1.0 else "RUN" for t in ct]
    gaits = [1 if 2.0 <= t < 4.0 else 0 for t in ct]
    tt = np.arange(0.0, 6.0, 0.01)
    posture = np.array(
        ["rear" if 2.6 <= t < 3.5 else "between" if 3.5 <= t < 4.3 else "four" for t in tt],
        dtype=object,
    )
    bip, quad = demo.gait_changes(ct, modes, gaits, tt, posture)
    assert bip["gait"] == "bipedal" and bip["reached_after_s"] == pytest.approx(0.6, abs=0.02)
    assert bip["held_share"] == pytest.approx(0.9 / 1.38, abs=0.02)  # fell out at 3.5 s
    assert quad["gait"] == "quadrupedal" and quad["reached_after_s"] == pytest.approx(0.3, abs=0.02)
    assert quad["held_share"] == 1.0
    never = demo.gait_changes(ct, modes, gaits, tt, np.full(len(tt), "four", dtype=object))[0]
    assert never["reached_after_s"] is None and never["held_share"] == 0.0
