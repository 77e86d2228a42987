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


def test_the_forward_velocity_is_along_the_bipedal_heading():
    """A robot on its rear legs (body x up, belly forward) moving at 0.4 m/s along its heading
    measures +0.4; the same velocity reversed, -0.4; and the results carry it."""
    import numpy as np

    from moe_loco_training.train import biped_eval

    env = biped_eval._env("balance_upright", robots=2, duration_s=1.0, vx=0.3)
    try:
        env.reset()
        rot = env._rotation(env.state)
        forward = rot[:, :, 0] - rot[:, :, 2]  # the bipedal heading axis, horizontal part
        forward[:, 2] = 0.0
        forward /= np.linalg.norm(forward, axis=1, keepdims=True)
        q0 = env._qvel0
        env.state[:, q0 : q0 + 3] = 0.4 * forward * np.array([[1.0], [-1.0]])
        np.testing.assert_allclose(biped_eval._heading_vx(env), [0.4, -0.4], atol=1e-9)
    finally:
        env.close()
    r = biped_eval.BipedResult("walk_from_stance", 1.0, 10.0, 0.27, 0.3)
    assert "vx +0.27 m/s of +0.30" in biped_eval.format_results([r])
