"""cmd_vel beside the operator command: the precedence and staleness rules (core, no ROS)."""

import math

import pytest

from moe_loco_controller.core.config import ConfigError, load_config
from moe_loco_controller.core.controller import OperatorCommand, Request
from moe_loco_controller.core.velocity_source import CmdVelConfig, TwistCommand, merge_velocity

CFG = CmdVelConfig(timeout_s=0.5)
NOW = 100.0


def op(**kw):
    return OperatorCommand(**{"deadman": True, "stamp": NOW - 0.01, **kw})


def twist(vx=0.4, vy=-0.1, wz=0.3, age=0.01):
    return TwistCommand(vx, vy, wz, NOW - age)


def test_a_fresh_twist_gives_the_velocity_while_the_deadman_is_held_and_the_sticks_rest():
    out, source = merge_velocity(op(gait=1, request=Request.RUN), twist(), NOW, CFG, 0.5)
    assert source == "cmd_vel" and (out.vx, out.vy, out.wz) == (0.4, -0.1, 0.3)
    # everything but the velocity is the operator's: gait, request, e-stop, deadman, stamp
    assert (out.gait, out.request, out.deadman, out.stamp) == (1, Request.RUN, True, NOW - 0.01)


def test_the_operator_s_sticks_win_over_the_twist():
    out, source = merge_velocity(op(vx=0.2), twist(), NOW, CFG, 0.5)
    assert source == "operator" and (out.vx, out.vy, out.wz) == (0.2, 0.0, 0.0)


@pytest.mark.parametrize("age", [0.51, 5.0, -0.1])  # stale, or from the future (clock step)
def test_a_stale_twist_gives_zero(age):
    out, source = merge_velocity(op(), twist(age=age), NOW, CFG, 0.5)
    assert source == "none" and (out.vx, out.vy, out.wz) == (0.0, 0.0, 0.0)


def test_a_twist_alone_never_moves_or_starts_the_robot():
    assert merge_velocity(None, twist(), NOW, CFG, 0.5) == (None, "none")
    released = op(deadman=False, request=Request.STAND)
    assert merge_velocity(released, twist(), NOW, CFG, 0.5) == (released, "none")
    stale_operator = op(stamp=NOW - 0.6)
    assert merge_velocity(stale_operator, twist(), NOW, CFG, 0.5) == (stale_operator, "none")


def test_disabled_cmd_vel_is_ignored():
    off = CmdVelConfig(enabled=False)
    out, source = merge_velocity(op(), twist(), NOW, off, 0.5)
    assert source == "none" and out.vx == 0.0


def test_a_non_finite_twist_reaches_the_core_which_refuses_it(make_policy):
    from moe_loco_controller.core.controller import ControlCore
    from moe_loco_controller.core.policy import PolicyRuntime

    core = ControlCore(PolicyRuntime(make_policy()))
    merged, _ = merge_velocity(op(), twist(vx=math.nan), NOW, CFG, 0.5)
    result = core.step(None, merged, NOW)
    assert list(result.status.command) == [0.0, 0.0, 0.0]
    assert any("vx not finite" in e for e in result.events)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cmd_vel.timeout_s": 0.0}, "cmd_vel.timeout_s must be in (0, 5]"),
        ({"cmd_vel.timeout_s": 60.0}, "cmd_vel.timeout_s must be in (0, 5]"),
        ({"cmd_vel.topic": "cmd vel"}, "cmd_vel.topic: invalid ROS topic name"),
        ({"cmd_vel.enabled": "yes"}, "cmd_vel.enabled: expected true or false"),
    ],
)
def test_bad_cmd_vel_settings_are_named(change, message):
    with pytest.raises(ConfigError) as e:
        load_config().replace(**change)
    assert message in str(e.value)


def test_packaged_cmd_vel_settings():
    cfg = load_config().cmd_vel
    assert (cfg.enabled, cfg.topic, cfg.stamped, cfg.timeout_s) == (True, "cmd_vel", False, 0.5)
