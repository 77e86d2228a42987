import numpy as np
import pytest

from moe_loco_controller.core.controller import Request
from moe_loco_controller.core.joystick import (
    JoyInput,
    JoyMapping,
    JoystickConfig,
    JoystickLogic,
    remote_input,
)
from moe_loco_controller.core.remote import pack_remote, parse_remote

RANGES = {
    0: {"vx": (-1.0, 1.0), "vy": (-0.5, 0.5), "wz": (-1.0, 1.0)},
    1: {"vx": (-0.3, 0.6), "vy": (-0.2, 0.2), "wz": (-0.5, 0.5)},
}
MAP = JoyMapping()


def joy(t, buttons=(), lx=0.0, ly=0.0, rx=0.0):
    axes = [0.0] * 8
    axes[MAP.axis_vx], axes[MAP.axis_vy], axes[MAP.axis_wz] = ly, lx, rx
    pressed = [0] * 11
    for b in buttons:
        pressed[MAP.buttons[b]] = 1
    return MAP.joy_input(axes, pressed, t)


def test_one_toggle_per_press():
    logic = JoystickLogic(RANGES)
    t = 0.0
    for _ in range(50):  # held for 1 s: one toggle
        t += 0.02
        logic.feed(joy(t, ["gait_toggle"]))
    assert logic.gait == 1 and logic.toggles == 1
    for _ in range(10):
        t += 0.02
        logic.feed(joy(t))
    for _ in range(10):
        t += 0.02
        logic.feed(joy(t, ["gait_toggle"]))
    assert logic.gait == 0 and logic.toggles == 2


def test_contact_bounce_is_debounced():
    logic = JoystickLogic(RANGES)
    for i, held in enumerate([1, 0, 1, 0, 1, 1, 1]):  # bouncing within 0.12 s
        logic.feed(joy(0.02 * i, ["gait_toggle"] if held else []))
    assert logic.toggles == 1


def test_deadman_ranges_and_rate_limit():
    logic = JoystickLogic(RANGES, JoystickConfig(max_accel=(1.0, 1.0, 2.0)))
    logic.feed(joy(0.0, ["deadman"], ly=1.0, lx=-1.0, rx=0.5))
    c = logic.command(0.0)
    assert (c.vx, c.vy, c.wz) == (0.0, 0.0, 0.0) and c.deadman
    for i in range(1, 101):  # 2 s at 50 Hz
        logic.feed(joy(0.02 * i, ["deadman"], ly=1.0, lx=-1.0, rx=0.5))
        c = logic.command(0.02 * i)
        if i == 25:  # after 0.5 s, at most 0.5 m/s
            assert c.vx == pytest.approx(0.5)
    assert (c.vx, c.vy, c.wz) == pytest.approx((1.0, -0.5, 0.5))
    logic.feed(joy(2.02, [], ly=1.0))  # deadman released: zero at once
    c = logic.command(2.02)
    assert (c.vx, c.vy, c.wz) == (0.0, 0.0, 0.0) and not c.deadman


def test_ranges_follow_the_gait_and_negative_uses_min():
    logic = JoystickLogic(RANGES, JoystickConfig(max_accel=(100.0, 100.0, 100.0)), gait=1)
    logic.command(0.0)
    logic.feed(joy(1.0, ["deadman"], ly=-1.0))
    c = logic.command(1.0)
    assert c.vx == pytest.approx(-0.3) and c.gait == 1


def test_deadzone():
    logic = JoystickLogic(RANGES, JoystickConfig(max_accel=(100.0, 100.0, 100.0)))
    logic.command(0.0)
    logic.feed(joy(1.0, ["deadman"], ly=0.04))
    assert logic.command(1.0).vx == 0.0


def test_requests_on_press_edges_and_estop_while_held():
    logic = JoystickLogic(RANGES)
    assert logic.feed(joy(0.0, ["stand"])) == Request.STAND
    assert logic.feed(joy(0.02, ["stand"])) == Request.NONE
    assert logic.feed(joy(0.04, ["run"])) == Request.RUN
    assert logic.feed(joy(0.06, ["reset"])) == Request.RESET
    logic.feed(joy(0.08, ["estop"]))
    assert logic.command(0.08).estop
    logic.feed(joy(0.10))
    assert not logic.command(0.10).estop


def test_lost_joystick_zero_then_damp():
    logic = JoystickLogic(RANGES, JoystickConfig(lost_timeout_s=0.5, lost_damp_s=1.5))
    logic.feed(joy(0.0, ["deadman"], ly=1.0))
    logic.command(0.0)
    c = logic.command(0.6)
    assert not c.deadman and c.vx == 0.0 and c.request == Request.NONE
    c = logic.command(1.6)
    assert c.request == Request.DAMP
    off = JoystickLogic(RANGES, JoystickConfig(lost_damp_s=0.0))
    off.feed(joy(0.0))
    assert off.command(10.0).request == Request.NONE


def test_go2_remote_mapping():
    keys = (1 << 1) | (1 << 11)  # L1 (deadman) and Y (gait toggle)
    k, axes = parse_remote(pack_remote(keys, np.array([0.5, 1.0, -0.25, 0.0, 0.0])))
    sample = remote_input(k, axes, 3.0)
    assert sample.buttons == {"deadman", "gait_toggle"}
    assert sample.sticks == (1.0, -0.5, 0.25)  # ly forward; lx, rx positive right


def test_mapping_validation():
    with pytest.raises(ValueError, match="missing"):
        JoyMapping(buttons={"deadman": 1})
    with pytest.raises(ValueError, match="index >= 0"):
        JoyMapping(axis_vx=-1)
    short = MAP.joy_input([0.3], [0], 0.0)  # a pad with fewer axes/buttons: missing read as 0
    assert short.sticks == (0.0, 0.3, 0.0) and short.buttons == frozenset()


def test_joyinput_is_plain():
    s = JoyInput(frozenset({"deadman"}), (0.0, 0.0, 0.0), 0.0)
    assert "deadman" in s.buttons
