"""The fault campaign over real DDS on ``lo`` (see ``fault_campaign.py``): every fault damps
within 2 control periods of becoming detectable, the e-stop holds during each, and the robot
receives not one non-finite, out-of-bounds or badly checksummed LowCmd_."""

import rclpy
from fault_campaign import run_campaign
from shared_machine import SHARED_MACHINE_TIMING


def test_fault_campaign_over_dds(unitree_channels, make_policy, capsys):
    rclpy.init()
    try:
        campaign = run_campaign(
            unitree_channels, make_policy(nan_above_vx=0.75), config=SHARED_MACHINE_TIMING
        )
    finally:
        rclpy.try_shutdown()
    with capsys.disabled():  # the figures, in the test output
        print()
        for f in campaign.figures:
            print(f.line())
        print(campaign.summary())
    w = campaign.wire
    assert w["count"] > 5000 and w["non_finite"] == 0 and w["bad_crc"] == 0
    assert w["out_of_bounds"] == 0, w["first_problem"]
    expected = {
        "estop": "estop",
        "stop": "stale_state",
        "badcrc": "stale_state",
        "duplicate": "frozen_state",
        "stale": "stale_state",
        "backwards": "tick_backwards",
        "nan_policy": "non_finite_policy",
        "stall": "control_stalled",
    }
    by_name = {f.scenario: f for f in campaign.figures}
    assert set(by_name) == {*expected, "kill"}
    for name, fault in expected.items():
        f = by_name[name]
        assert fault in f.faults, (name, f.faults)
        assert f.estop_latched and f.wire_damping_during_estop, f.line()
    for f in campaign.figures:  # the bounded safety figure: DAMP within 2 control periods
        assert f.after_detectable_periods <= 2.0, f.line()
    assert by_name["kill"].wire_damping_during_estop and w["damping_after_kill"] > 50
    assert w["flood_mode"] in ("RUN", "DAMP")
