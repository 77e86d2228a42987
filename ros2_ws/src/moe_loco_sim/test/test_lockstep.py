"""Lockstep sim + controller core: stand-up to the default pose with the YAML's stand gains,
knock-overs damp, bit-identical runs, and the state the core sees is what the wire carries."""

import numpy as np
import pytest

from moe_loco_controller.core import go2
from moe_loco_controller.core.config import load_config
from moe_loco_controller.core.controller import Mode, Request
from moe_loco_controller.io import cdr
from moe_loco_controller.io.unitree_sdk import sdk
from moe_loco_sim.lockstep import (
    LockstepConfig,
    LockstepHarness,
    OperatorEvent,
    Push,
    max_pose_error,
    operator,
    standard_script,
)
from moe_loco_sim.lowlevel_state import encode_lowstate, robot_state_from_frame
from moe_loco_sim.robot import LIE_POSE
from moe_loco_sim.scene import build_scene

STAND_AT = 0.5
STAND_DONE = STAND_AT + load_config().control.stand_duration_s


@pytest.fixture(scope="module")
def scenes():
    return {name: build_scene("plane", name) for name in ("menagerie", "cheap")}


def harness(policy, scenes, contact="menagerie", seed=0, script=None, pushes=(), **control):
    ctrl = load_config().control
    if control:
        import dataclasses

        ctrl = dataclasses.replace(ctrl, **control)
    script = script or [operator(0.0), operator(STAND_AT, request=Request.STAND)]
    return LockstepHarness(
        policy,
        ctrl,
        LockstepConfig(contact=contact, seed=seed),
        script=script,
        pushes=pushes,
        scene=scenes[contact],
    )


@pytest.mark.parametrize("contact", ["menagerie", "cheap"])
@pytest.mark.parametrize("seed", [0, 3])
def test_stand_brings_the_robot_to_the_default_pose(zero_policy, scenes, contact, seed):
    h = harness(zero_policy, scenes, contact, seed)
    default = h.core.action_map.default_pose_sdk
    trace = h.run(STAND_DONE + 1.0)
    assert np.abs(trace.joint_pos[0] - LIE_POSE).max() < 0.1  # it started lying down
    assert trace.modes_timeline() == [(0.0, "PASSIVE"), (pytest.approx(STAND_AT), "STAND")]
    assert trace.stand_progress[-1] == 1.0 and not any(trace.faults)
    err = max_pose_error(trace, default, last_s=0.5)
    print(f"{contact} seed {seed}: max joint error after STAND {err:.4f} rad")
    assert err < 0.05
    # standing: level, at standing height, the YAML's stand gains on every motor
    assert np.all(trace.base_height[-25:] > 0.27)
    up = 1 - 2 * (trace.base_quat[-1, 1] ** 2 + trace.base_quat[-1, 2] ** 2)
    assert up > 0.99
    stand_kp = load_config().control.stand_kp
    assert np.all(trace.kp[-1] == stand_kp)


def test_without_integral_action_the_stand_sags_past_the_limit(zero_policy, scenes):
    """Why STAND integrates its error: at a fixed Kp the pose sags by load torque / Kp."""
    for kp, kd in ((None, None), (60.0, 5.0)):  # the policy's 40 / 0.5, Unitree's 60 / 5
        h = harness(zero_policy, scenes, stand_kp=kp, stand_kd=kd, stand_integral_gain=0.0)
        trace = h.run(STAND_DONE + 1.0)
        assert max_pose_error(trace, h.core.action_map.default_pose_sdk) > 0.08, (kp, kd)


def test_knocking_it_over_in_stand_damps(zero_policy, scenes):
    roll = Push(t=STAND_DONE + 0.5, duration=0.3, torque=(60.0, 0.0, 0.0))
    h = harness(zero_policy, scenes, pushes=[roll])
    trace = h.run(STAND_DONE + 2.5)
    damp = trace.first_time(Mode.DAMP)
    assert damp is not None and damp > roll.t, trace.modes_timeline()
    i = int(np.flatnonzero(trace.mode == Mode.DAMP)[0])
    assert "tilt" in trace.faults[i]
    assert trace.mode[i - 1] == Mode.STAND
    assert np.all(trace.mode[i:] == Mode.DAMP)  # latched
    assert np.all(trace.kp[i:] == 0.0) and np.all(trace.kd[i:] == load_config().control.damp_kd)
    assert any("STAND -> DAMP" in e for _, e in trace.events)


def test_knocking_it_over_in_run_damps(zero_policy, scenes):
    script = [
        operator(0.0),
        operator(STAND_AT, request=Request.STAND),
        operator(STAND_DONE + 0.2, request=Request.RUN),
    ]
    h = harness(zero_policy, scenes, script=script)
    h.run(STAND_DONE + 1.5)
    assert h.trace.mode[-1] == Mode.RUN and np.all(h.trace.kp[-1] == 40.0)
    assert h.robot.upright() > 0.99  # the zero-action policy stands (sagging) at 40 / 0.5
    # set a large roll: the base tipped 1.3 rad about x, lifted clear of the ground
    q = h.robot.data.qpos
    a = h.robot.idx.base_qpos
    q[a + 2] += 0.1
    q[a + 3 : a + 7] = [np.cos(0.65), np.sin(0.65), 0.0, 0.0]
    trace = h.run(0.1)
    i = int(np.flatnonzero(trace.mode == Mode.DAMP)[0])
    assert trace.mode[i - 1] == Mode.RUN
    assert trace.t[i] - (STAND_DONE + 1.5) <= 0.021  # the next control step
    assert "tilt" in trace.faults[i]


def test_same_seed_gives_bit_identical_runs(random_linear_policy, scenes):
    pushes = [Push(t=5.0, duration=0.2, force=(0.0, 80.0, 0.0))]

    def run(seed):
        h = harness(
            random_linear_policy, scenes, seed=seed, script=standard_script(), pushes=pushes
        )
        return h.run(8.0)

    a, b, c = run(0), run(0), run(1)
    assert a.digest() == b.digest()
    for name, col in a.arrays().items():
        assert col.tobytes() == b.arrays()[name].tobytes(), name
    assert a.events == b.events and len(a) == 400
    assert a.digest() != c.digest()  # the seed matters (start pose perturbation)
    assert Mode.RUN in a.mode  # the scripted run reached the policy


def test_operator_requests_are_edges_and_silence_damps(zero_policy, scenes):
    script = [
        operator(0.0),
        operator(STAND_AT, request=Request.STAND),
        OperatorEvent(STAND_AT + 1.0, None),  # the operator goes silent
    ]
    h = harness(zero_policy, scenes, script=script)
    trace = h.run(STAND_AT + 1.0 + load_config().control.command_lost_damp_s + 0.2)
    assert sum("PASSIVE -> STAND" in e for _, e in trace.events) == 1
    i = int(np.flatnonzero(trace.mode == Mode.DAMP)[0])
    assert "joystick_lost" in trace.faults[i]


def test_core_sees_what_the_wire_carries(zero_policy, scenes):
    h = harness(zero_policy, scenes)
    h.run(STAND_DONE + 1.0)  # standing still
    robot = h.robot
    robot.begin_step()
    frame = robot.frame()
    state = robot_state_from_frame(frame, stamp=1.0, tick=1234)
    data = encode_lowstate(frame, 1234)
    msg = sdk.LowState_.deserialize(data)  # CycloneDDS's own decoder
    assert cdr.lowstate_values_crc(cdr.decode_lowstate(data)) == msg.crc
    assert state.tick == msg.tick == 1234 and state.problems == ()
    q = np.array([msg.motor_state[i].q for i in range(12)])
    np.testing.assert_array_equal(state.q, q)
    np.testing.assert_allclose(state.q, robot.joint_pos(), atol=1e-6)  # float32 on the wire
    np.testing.assert_allclose(state.quat_wxyz, msg.imu_state.quaternion)
    np.testing.assert_allclose(state.quat_wxyz, robot.base_quat(), atol=1e-6)  # w first
    np.testing.assert_allclose(state.gyro, robot.base_ang_vel_body(), atol=1e-5)
    assert state.accel[2] == pytest.approx(9.81, abs=0.3)
    assert list(msg.foot_force) == list(state.foot_force)
    assert 0.8 * go2_weight() < sum(msg.foot_force) < 1.2 * go2_weight()
    assert all(msg.motor_state[i].mode == go2.MOTOR_MODE_SERVO for i in range(12))
    np.testing.assert_allclose(msg.imu_state.rpy, [0.0, 0.0, 0.0], atol=0.05)
    robot.end_step()


def go2_weight():
    return 15.206 * 9.81
