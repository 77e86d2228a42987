"""An exception inside a control step: DAMP with a fault naming it, never a dead loop; and the
policies that used to load and then raise in their first step, refused at load instead."""

import numpy as np
import pytest
from test_controller_core import Driver

from moe_loco_controller.core.controller import ControlCore, Mode
from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_controller.core.policy_metadata import PolicyFileError
from moe_loco_controller.core.safety import Fault


def test_a_gait_without_tilt_limits_is_refused_at_load(make_policy):
    # used to load, then raise "no tilt limits for gait 'walk'" at the first STAND step
    path = make_policy(
        meta_changes={
            "gaits": ["walk", "bipedal"],
            "command_ranges": {
                "walk": {"vx": [-1, 1], "vy": [-1, 1], "wz": [-1, 1]},
                "bipedal": {"vx": [-1, 1], "vy": [-1, 1], "wz": [-1, 1]},
            },
        }
    )
    with pytest.raises(PolicyFileError, match="no tilt limits for gait 'walk'") as e:
        PolicyRuntime(path)
    assert e.value.field == "gaits[0]"


def test_a_symbolic_output_of_the_wrong_size_is_refused_at_load(make_policy):
    # the graph declares actions [1, "num_actions"] and returns [1, 11]
    with pytest.raises(
        PolicyFileError,
        match=r"output 'actions' is float32\[1, 11\], the metadata says float32\[1, 12\]",
    ):
        PolicyRuntime(make_policy(actions_out=11))


def test_an_onnx_runtime_failure_in_a_step_damps_with_the_fault_naming_it(make_policy):
    core = ControlCore(PolicyRuntime(make_policy()))
    d = Driver(core)
    d.to_run()
    # a real ONNX Runtime failure: the recurrent input fed as float64 is refused by the session
    core.policy._feed["h"] = np.zeros((1, 1, 12), dtype=np.float64)
    r = d.step()  # used to raise out of step() and kill the control thread
    assert core.mode == Mode.DAMP
    assert Fault.CONTROL_ERROR in r.status.faults
    detail = r.status.fault_details[r.status.faults.index(Fault.CONTROL_ERROR)]
    assert "PolicyStepError" in detail and "ONNX Runtime failed" in detail
    assert np.all(r.command.kp == 0) and np.all(r.command.kd == core.config.damp_kd)
    for _ in range(5):  # and it stays down, stepping normally
        r = d.step()
        assert core.mode == Mode.DAMP and np.all(r.command.kp == 0)


def test_any_exception_in_a_step_damps(make_policy):
    core = ControlCore(PolicyRuntime(make_policy()))
    d = Driver(core)
    d.step(1)  # STAND
    assert core.mode == Mode.STAND
    core._stand_from = np.zeros(5)  # a broken internal state: broadcasting fails in the step
    r = d.step()
    assert core.mode == Mode.DAMP and Fault.CONTROL_ERROR in r.status.faults
    assert any("ValueError" in e for e in r.events)
