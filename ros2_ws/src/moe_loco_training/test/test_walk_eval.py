"""The walking tests of bench-learn: a policy that does not walk fails them, with its errors."""

from __future__ import annotations

import pytest
import torch

from moe_loco_training.models import MoELocoActorCritic, model_config_from_preset
from moe_loco_training.train.walk_eval import (
    WALK_TESTS,
    WalkCommand,
    WalkReport,
    WalkResult,
    evaluate_walking,
)


def test_an_untrained_policy_fails_the_walking_tests():
    torch.manual_seed(0)
    model = MoELocoActorCritic(model_config_from_preset("cpu"))
    tests = (WalkCommand("forward", 0.5, 0.0, 0.0), WalkCommand("turn", 0.0, 0.0, 1.0))
    report = evaluate_walking(model, tests, duration_s=1.5, settle_s=0.5)
    assert len(report.results) == 2 and not report.passed()
    fwd, turn = report.results
    assert fwd.lin_err > 0.3  # it does not walk at 0.5 m/s
    assert turn.yaw_err > 0.6  # nor turn at 1 rad/s
    assert model.training  # the evaluation leaves the model's mode as it found it
    assert len(report.lines()) == 2 and "forward" in report.lines()[0]


def test_the_criterion_needs_every_test_within_tolerance_and_no_fall():
    c = WALK_TESTS[0]
    good = WalkResult(c, 0.08, 0.2, 0.1, (0.5, 0.0), 0.0, False)
    assert good.passed() and WalkReport((good, good)).passed()
    for bad in (
        WalkResult(c, 0.11, 0.2, 0.1, (0.4, 0.0), 0.0, False),
        WalkResult(c, 0.05, 0.2, 0.21, (0.5, 0.0), 0.2, False),
        WalkResult(c, 0.05, 0.2, 0.1, (0.5, 0.0), 0.0, True),
    ):
        assert not bad.passed() and not WalkReport((good, bad)).passed()
    assert WalkReport((good,)).worst_lin_err == pytest.approx(0.08)
    assert {t.name for t in WALK_TESTS} == {
        "forward_0.5",
        "forward_1.0",
        "sideways_0.3",
        "turn_1.0",
    }
