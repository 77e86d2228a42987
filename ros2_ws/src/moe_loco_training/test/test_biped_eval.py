"""The bipedal tests: an untrained policy neither stands up nor stays up, and says so."""

from __future__ import annotations

import pytest
import torch

from moe_loco_training.models import MoELocoActorCritic, model_config_from_preset
from moe_loco_training.train.biped_eval import BIPED_TESTS, evaluate_bipedal, format_results


def test_an_untrained_policy_fails_every_bipedal_test():
    torch.manual_seed(0)
    model = MoELocoActorCritic(model_config_from_preset("cpu"))
    results = evaluate_bipedal(model, robots=4, duration_s=2.0)
    assert [r.test for r in results] == list(BIPED_TESTS)
    standup, walk, upright = results
    # from the stance nobody is on the rear legs when the 1 s grace ends
    assert standup.alive == 0.0 and standup.mean_time_s == pytest.approx(1.02, abs=0.05)
    assert walk.alive == 0.0
    # started upright, it falls over: a front link touches down within the run
    assert upright.alive < 1.0 and upright.mean_time_s < 2.0
    assert model.training
    assert "standup 0.00 up" in format_results(results)
    with pytest.raises(ValueError, match="unknown bipedal test"):
        evaluate_bipedal(model, robots=1, duration_s=0.1, tests=("cartwheel",))
