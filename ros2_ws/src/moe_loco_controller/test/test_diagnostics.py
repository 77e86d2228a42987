"""The /diagnostics content (core, no ROS): levels and messages for each situation."""

import math

import numpy as np
import pytest

from moe_loco_controller.core.controller import CoreStatus, Mode
from moe_loco_controller.core.diagnostics import (
    ERROR,
    OK,
    STALE,
    WARN,
    LinkHealth,
    controller_diagnostics,
)
from moe_loco_controller.core.policy import PolicyRuntime

FRESH = LinkHealth("unitree", state_age_s=0.004, stale_limit_s=0.06)


def status(mode=Mode.RUN, faults=(), details=()):
    return CoreStatus(
        mode=mode,
        gait=0,
        step=10,
        command=np.zeros(3),
        gate=np.full(6, 1 / 6),
        expert_scale=np.ones(6),
        estimated_lin_vel=np.zeros(3),
        faults=tuple(faults),
        fault_details=tuple(details),
        state_age_s=0.004,
        stand_progress=1.0,
    )


@pytest.fixture
def meta(make_policy):
    return PolicyRuntime(make_policy()).metadata


def diag(meta, st, link=FRESH, ticks=50, overruns_new=0):
    return {
        e.name: e
        for e in controller_diagnostics(
            st,
            meta,
            "p.onnx",
            periods_s=[0.02] * ticks,
            lateness_s=[0.0001] * ticks,
            compute_s=[0.001] * ticks,
            overruns_total=3,
            overruns_new=overruns_new,
            link=link,
            velocity_source="cmd_vel",
        )
    }


def test_all_well_is_ok_everywhere(meta):
    d = diag(meta, status())
    assert [e.level for e in d.values()] == [OK] * 4
    assert d["moe_loco: mode"].message == "RUN"
    loop = dict(d["moe_loco: control loop"].values)
    assert loop["rate [Hz]"] == "50.0" and loop["overruns (total)"] == "3"
    assert dict(d["moe_loco: mode"].values)["velocity source"] == "cmd_vel"
    policy = dict(d["moe_loco: policy"].values)
    assert policy["file"] == "p.onnx" and policy["experts"] == "6"


def test_a_latched_fault_is_an_error_naming_it(meta):
    d = diag(meta, status(Mode.DAMP, ["estop"], ["e-stop pressed"]))
    e = d["moe_loco: mode"]
    assert e.level == ERROR and e.message == "DAMP (latched): estop (e-stop pressed)"
    assert dict(e.values)["fault estop"] == "e-stop pressed"
    d = diag(meta, status(Mode.PASSIVE, ["stale_state"], ["no state"]))
    assert d["moe_loco: mode"].level == ERROR and "stale_state" in d["moe_loco: mode"].message


def test_link_health(meta):
    stale = LinkHealth("unitree", state_age_s=math.inf, stale_limit_s=0.06)
    e = diag(meta, status(), link=stale)["moe_loco: robot link"]
    assert e.level == ERROR and "robot state stale (inf ms)" in e.message
    crc = LinkHealth("unitree", 0.004, 0.06, bad_crc_total=12, bad_crc_new=5)
    e = diag(meta, status(), link=crc)["moe_loco: robot link"]
    assert e.level == WARN and e.message == "5 CRC error(s) in the window"
    assert dict(e.values)["CRC errors (total)"] == "12"
    other = LinkHealth("unitree", 0.004, 0.06, faults=(("other_lowcmd_publisher", "pid 7"),))
    e = diag(meta, status(), link=other)["moe_loco: robot link"]
    assert e.level == ERROR and "other_lowcmd_publisher" in e.message
    trip = LinkHealth("unitree", 0.004, 0.06, watchdog_trips_total=1, watchdog_trips_new=1)
    assert diag(meta, status(), link=trip)["moe_loco: robot link"].level == ERROR


def test_loop_overruns_and_no_step(meta):
    e = diag(meta, status(), overruns_new=2)["moe_loco: control loop"]
    assert e.level == WARN and e.message.startswith("2 overrun(s)")
    e = diag(meta, status(), ticks=0)["moe_loco: control loop"]
    assert e.level == WARN and e.message == "no control step"
    assert diag(meta, None)["moe_loco: mode"].level == STALE
