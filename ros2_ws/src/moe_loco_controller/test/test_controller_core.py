"""The control core: modes, PD targets, the recurrent-state rule, and every DAMP trigger."""

import math

import numpy as np
import pytest
from test_safety import quat_rpy

from moe_loco_controller.core import go2
from moe_loco_controller.core.controller import (
    ControlCore,
    ControllerConfig,
    Mode,
    OperatorCommand,
    Request,
)
from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_controller.core.robot_state import RobotState
from moe_loco_controller.core.safety import Fault

DT = 0.02
CROUCH = np.array([0.0, 1.2, -2.6] * 4)
FRESH = object()


def state(t, q=None, tick=None, **changes):
    s = RobotState.nominal(stamp=t, q=q, tick=tick)
    return RobotState(**{**s.__dict__, **changes}) if changes else s


class Driver:
    """Steps a core at 50 Hz with a fresh robot state each step unless told otherwise."""

    def __init__(self, core, q=CROUCH):
        self.core, self.t, self.q = core, 0.0, np.array(q, dtype=float)
        self.cmd = OperatorCommand(deadman=True)
        self.last = None

    def step(self, request=Request.NONE, state_=FRESH, **cmd):
        self.t += DT
        c = OperatorCommand(**{**self.cmd.__dict__, **cmd, "request": request, "stamp": self.t})
        self.cmd = OperatorCommand(**{**c.__dict__, "request": Request.NONE})
        s = state(self.t, self.q) if state_ is FRESH else state_
        self.last = self.core.step(s, c, self.t)
        return self.last

    def run_for(self, seconds, **kw):
        for _ in range(round(seconds / DT)):
            r = self.step(**kw)
        return r

    def to_run(self):
        self.step(Request.STAND)
        self.run_for(self.core.config.stand_duration_s)
        self.q = self.core.action_map.default_pose_sdk.copy()
        r = self.step(Request.RUN)
        assert self.core.mode == Mode.RUN, r.events
        return r


@pytest.fixture
def core(make_policy):
    return ControlCore(PolicyRuntime(make_policy()))


def test_passive_is_zero_torque_and_faults_do_not_latch(core):
    d = Driver(core)
    r = d.step(state_=None)
    assert core.mode == Mode.PASSIVE and Fault.NO_STATE in r.status.faults
    assert np.all(r.command.kp == 0) and np.all(r.command.kd == 0)
    r = d.step()
    assert core.mode == Mode.PASSIVE and r.status.faults == ()


def test_stand_interpolates_from_the_measured_pose_to_the_default(core):
    d = Driver(core)
    r = d.step(Request.STAND)
    assert core.mode == Mode.STAND and "PASSIVE -> STAND" in r.events
    np.testing.assert_allclose(r.command.q, CROUCH, atol=1e-12)  # starts where the robot is
    mid = d.run_for(1.0)
    default = core.action_map.default_pose_sdk
    np.testing.assert_allclose(mid.command.q, 0.5 * CROUCH + 0.5 * default, atol=0.02)
    assert np.all(mid.command.kp == 40.0) and np.all(mid.command.kd == 0.5)
    end = d.run_for(1.1)
    np.testing.assert_allclose(end.command.q, default, atol=1e-12)
    assert end.status.stand_progress == 1.0


def test_stand_gains_can_be_stiffer(make_policy):
    core = ControlCore(PolicyRuntime(make_policy()), ControllerConfig(stand_kp=60.0, stand_kd=2.0))
    r = Driver(core).step(Request.STAND)
    assert np.all(r.command.kp == 60.0) and np.all(r.command.kd == 2.0)


def test_run_is_refused_until_standing_is_done(core):
    d = Driver(core)
    d.step(Request.STAND)
    r = d.step(Request.RUN)
    assert core.mode == Mode.STAND and "run refused: still standing up" in r.events
    d.to_run()


def test_run_pd_targets_map_policy_order_to_sdk_by_name(make_policy, urdf_order):
    bias = np.linspace(-2.0, 2.0, 12)  # distinct per joint, in the policy's (URDF) order
    bias[0] = 50.0  # beyond action_clip (10): clipped
    core = ControlCore(PolicyRuntime(make_policy(joint_names=urdf_order, bias=bias)))
    r = Driver(core).to_run()
    clipped = np.clip(bias, -10.0, 10.0)
    for i, name in enumerate(go2.JOINT_NAMES):
        j = urdf_order.index(name)
        expected = go2.DEFAULT_STANDING_POSE[i] + 0.25 * clipped[j]
        # then limited to the joint's range plus the target margin (FL hip: 2.6 rad asked)
        lo, hi = go2.JOINT_LOWER[i] - go2.TARGET_MARGIN, go2.JOINT_UPPER[i] + go2.TARGET_MARGIN
        assert (name == "FL_hip_joint") == (not lo <= expected <= hi)
        assert r.command.q[i] == pytest.approx(min(max(expected, lo), hi), abs=1e-6), name
    assert np.all(r.command.kp == 40.0) and np.all(r.command.kd == 0.5)
    assert np.all(r.command.dq == 0) and np.all(r.command.tau == 0)
    # the last action the policy observes next is the clipped one, in policy order
    np.testing.assert_allclose(core._last_action, clipped, atol=1e-6)


def test_recurrent_state_resets_on_entering_run_but_not_on_a_gait_switch(core):
    d = Driver(core)
    d.to_run()
    r = d.run_for(0.1)  # the test policy's estimate counts steps since its last reset
    assert r.status.estimated_lin_vel[0] == 6.0
    r = d.step(gait=1)
    assert core.gait == 1 and r.status.estimated_lin_vel[0] == 7.0  # kept across the switch
    d.step(Request.PASSIVE)
    d.step(Request.STAND)
    d.run_for(2.1)
    r = d.step(Request.RUN)
    assert r.status.estimated_lin_vel[0] == 1.0  # reset on entering RUN


def test_velocity_is_limited_per_gait_and_needs_the_deadman(core):
    d = Driver(core)
    d.to_run()
    r = d.step(vx=3.0, vy=-3.0, wz=0.2)
    np.testing.assert_allclose(r.status.command, [1.0, -0.5, 0.2])
    r = d.step(gait=1, vx=3.0, vy=-3.0, wz=-3.0)
    np.testing.assert_allclose(r.status.command, [0.6, -0.2, -0.5])
    r = d.step(deadman=False)
    np.testing.assert_allclose(r.status.command, [0.0, 0.0, 0.0])


def test_stale_operator_command_gives_zero_velocity(core):
    d = Driver(core)
    d.to_run()
    d.step(vx=0.5)
    t_cmd = d.t
    for _ in range(40):  # 0.8 s without a new operator command
        d.t += DT
        r = core.step(state(d.t, d.q), OperatorCommand(vx=0.5, deadman=True, stamp=t_cmd), d.t)
    assert core.mode == Mode.RUN
    np.testing.assert_allclose(r.status.command, 0.0)


# ------------------------------------------------------------------ DAMP triggers
def assert_damped_within_two_periods(d, core, fault, step_fn, kd=2.0):
    """Run ``step_fn`` (the fault present) for at most 2 steps; DAMP must be reached."""
    for _ in range(2):
        r = step_fn()
        if core.mode == Mode.DAMP:
            break
    assert core.mode == Mode.DAMP, r.events
    assert fault in r.status.faults
    assert np.all(r.command.kp == 0) and np.all(r.command.kd == kd)
    assert r.command.is_finite()
    return r


def tilted_state(t, q, roll=0.0, pitch=0.0):
    return state(t, q, quat_wxyz=quat_rpy(roll, pitch))


TRIGGERS = {
    "estop": lambda d: d.step(estop=True),
    "operator_damp": lambda d: d.step(Request.DAMP),
    "tilt": lambda d: d.step(state_=tilted_state(d.t + DT, d.q, roll=1.1)),
    "bad_state": lambda d: d.step(state_=state(d.t + DT, np.full(12, np.nan))),
    "joint_range": lambda d: d.step(state_=state(d.t + DT, d.q + np.r_[0, 0, 2.0, [0] * 9])),
    "stale_state": lambda d: d.step(state_=state(d.t - 0.07 + DT, d.q)),
    "no_state": lambda d: d.core.step(None, OperatorCommand(deadman=True, stamp=d.t), d.t),
}


@pytest.mark.parametrize("mode", ["STAND", "RUN"])
@pytest.mark.parametrize("fault", list(TRIGGERS))
def test_each_fault_damps_within_two_periods_and_latches(core, fault, mode):
    d = Driver(core)
    if mode == "RUN":
        d.to_run()
    else:
        d.step(Request.STAND)
        d.run_for(0.5)
    assert core.mode == Mode[mode]
    assert_damped_within_two_periods(d, core, fault, lambda: TRIGGERS[fault](d))
    d.cmd = OperatorCommand(deadman=True)  # e-stop released
    r = d.run_for(1.0)  # the fault is gone, the latch stays
    assert core.mode == Mode.DAMP and fault in r.status.faults
    r = d.step(Request.RESET)
    assert core.mode == Mode.PASSIVE, r.events
    assert r.status.faults == ()
    assert np.all(r.command.kp == 0) and np.all(r.command.kd == 0)


def test_reset_is_refused_while_a_fault_persists(core):
    d = Driver(core)
    d.to_run()
    d.step(estop=True)
    r = d.step(Request.RESET, estop=True)
    assert core.mode == Mode.DAMP and any("reset refused: estop" in e for e in r.events)
    r = d.step(Request.RESET, estop=False)
    assert core.mode == Mode.PASSIVE


def test_estop_damps_from_passive_too(core):
    d = Driver(core)
    r = d.step(estop=True)
    assert core.mode == Mode.DAMP and Fault.ESTOP in r.status.faults


def test_stand_is_refused_with_a_fault_present(core):
    d = Driver(core)
    r = d.step(Request.STAND, state_=state(d.t + DT, np.full(12, np.nan)))
    assert core.mode == Mode.PASSIVE
    assert any(e.startswith("stand refused: bad_state") for e in r.events)


def test_external_faults_damp(core):
    d = Driver(core)
    d.to_run()
    ext = ((Fault.OTHER_LOWCMD_PUBLISHER, "another process publishes rt/lowcmd"),)
    r = core.step(state(d.t + DT, d.q), OperatorCommand(deadman=True, stamp=d.t), d.t + DT, ext)
    assert core.mode == Mode.DAMP and Fault.OTHER_LOWCMD_PUBLISHER in r.status.faults


def test_lost_operator_damps_in_run(core):
    d = Driver(core)
    d.to_run()
    t_cmd = d.t
    mode_at = {}
    for i in range(1, 120):
        t = t_cmd + i * DT
        r = core.step(state(t, d.q), OperatorCommand(deadman=True, stamp=t_cmd), t)
        mode_at[round(i * DT, 2)] = core.mode
    assert mode_at[2.0] == Mode.RUN and mode_at[2.04] == Mode.DAMP
    assert Fault.JOYSTICK_LOST in r.status.faults


def test_nan_policy_damps_and_never_puts_nan_out(make_policy):
    core = ControlCore(PolicyRuntime(make_policy(nan=True)))
    d = Driver(core)
    d.step(Request.STAND)
    d.run_for(2.1)
    d.q = core.action_map.default_pose_sdk.copy()
    r = d.step(Request.RUN)  # the first policy step already returns NaN
    assert core.mode == Mode.DAMP
    assert Fault.NON_FINITE_POLICY in r.status.faults
    assert r.command.is_finite() and np.all(r.command.kp == 0)


def test_tilt_limits_follow_the_gait_with_a_transition(core):
    d = Driver(core)
    d.to_run()
    d.step(gait=1)
    for a in np.linspace(0, math.pi / 2, 30):  # stands up on the rear legs
        d.step(state_=tilted_state(d.t + DT, d.q, pitch=-a))
    assert core.mode == Mode.RUN
    for _ in range(150):  # 3 s standing, nose up
        d.step(state_=tilted_state(d.t + DT, d.q, pitch=-1.62))
    assert core.mode == Mode.RUN
    d.step(gait=0, state_=tilted_state(d.t + DT, d.q, pitch=-1.62))  # drop down: transition
    for _ in range(50):
        d.step(state_=tilted_state(d.t + DT, d.q, pitch=-1.62))
    assert core.mode == Mode.RUN  # 1 s into the 2 s transition, still upright is fine
    d.run_for(1.1, state_=tilted_state(d.t + DT, d.q, pitch=-1.62))
    assert core.mode == Mode.DAMP  # still nose-up past 1.6 rad after the transition


def test_invalid_gait_request_is_refused(core):
    d = Driver(core)
    r = d.step(gait=5)
    assert core.gait == 0 and any("gait request refused" in e for e in r.events)


def test_config_validation():
    with pytest.raises(ValueError, match=r"control\.damp_kd"):
        ControllerConfig(damp_kd=-1.0)
    with pytest.raises(ValueError, match=r"control\.stand_kp"):
        ControllerConfig(stand_kp=math.inf)


def test_a_gait_set_by_service_holds_until_the_operators_gait_changes(core):
    d = Driver(core)
    d.to_run()
    core.set_gait(1, d.t)
    d.run_for(0.2)  # the operator keeps sending gait 0: no change, so the service's gait holds
    assert core.gait == 1
    d.step(gait=1)
    d.step(gait=0)  # the operator's gait changes: it applies
    assert core.gait == 0


def test_stand_integral_action_is_bounded_and_resets(make_policy):
    cfg = ControllerConfig(stand_integral_gain=5.0, stand_integral_limit=0.1, stand_duration_s=0.2)
    core = ControlCore(PolicyRuntime(make_policy()), cfg)
    default = core.action_map.default_pose_sdk
    sag = default - 0.05  # a robot that stays 0.05 rad below its targets
    d = Driver(core, q=default)
    d.step(Request.STAND)
    d.run_for(0.2)
    d.q = sag
    r1 = d.step()
    r2 = d.step()
    # each step adds gain * dt * error = 5 * 0.02 * 0.05 = 0.005 rad to the target
    np.testing.assert_allclose(r2.command.q - r1.command.q, 0.005, atol=1e-9)
    r = d.run_for(5.0)
    np.testing.assert_allclose(r.command.q, default + 0.1, atol=1e-9)  # bounded
    d.step(Request.PASSIVE)
    d.q = default
    r = d.step(Request.STAND)  # a new STAND starts without the old offset
    np.testing.assert_allclose(r.command.q, default, atol=1e-9)
    with pytest.raises(ValueError, match="stand_integral_limit"):
        ControllerConfig(stand_integral_limit=-1.0)


def test_a_nan_operator_velocity_is_refused_not_fed_to_the_policy(core):
    d = Driver(core)
    d.to_run()
    r = d.step(vx=math.nan)  # used to reach the policy: DAMP as non_finite_policy, [nan, 0, 0]
    assert core.mode == Mode.RUN and list(r.status.command) == [0.0, 0.0, 0.0]
    assert any("velocity command refused: vx not finite" in e for e in r.events)
    r = d.step(vx=0.5, wz=math.inf)
    assert core.mode == Mode.RUN and list(r.status.command) == [0.0, 0.0, 0.0]
    r = d.step(vx=0.5, wz=0.0)
    assert r.status.command[0] == 0.5 and r.events == ()


@pytest.mark.parametrize("request_", [6, 200])
def test_an_undefined_mode_request_is_refused_with_a_reason(core, request_):
    r = Driver(core).step(request_)
    assert core.mode == Mode.PASSIVE
    assert any(f"request {request_} refused: unknown" in e for e in r.events), r.events


def test_a_repeated_frame_is_frozen_state_and_damps(core):
    d = Driver(core)
    d.to_run()
    frozen_tick = round(d.t * 1000)
    steps = 0
    while core.mode == Mode.RUN:  # fresh arrivals, the robot's tick stands still
        r = d.step(state_=state(d.t + DT, d.q, tick=frozen_tick))
        steps += 1
    # the stale limit is 3 periods (3 or 4 steps by rounding), DAMP in the step that detects it
    assert steps in (3, 4) and Fault.FROZEN_STATE in r.status.faults
    assert Fault.STALE_STATE not in r.status.faults


def test_a_tick_going_backwards_damps(core):
    d = Driver(core)
    d.to_run()
    r = d.step(state_=state(d.t + DT, d.q, tick=5))
    assert core.mode == Mode.DAMP and Fault.TICK_BACKWARDS in r.status.faults
    # a tick wrapping around 2**32 is not backwards
    core2 = ControlCore(core.policy)
    d2 = Driver(core2)
    d2.step(state_=state(DT, d2.q, tick=2**32 - 10))
    r = d2.step(state_=state(2 * DT, d2.q, tick=10))
    assert Fault.TICK_BACKWARDS not in r.status.faults
