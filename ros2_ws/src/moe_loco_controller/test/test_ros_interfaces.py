"""The ROS conventions over real rclpy (Fast DDS) and the Unitree link on loopback, with the
scripted robot peer: cmd_vel, joint_states, imu/data, the estimated velocity, /diagnostics and
the ROS parameters of the nodes."""

import time

import numpy as np
from geometry_msgs.msg import Twist
from test_controller_node import MODE, harness, ros  # noqa: F401 (fixtures)

from moe_loco_msgs.msg import LocoCommand


def twist(vx=0.0, vy=0.0, wz=0.0):
    msg = Twist()
    msg.linear.x, msg.linear.y, msg.angular.z = vx, vy, wz
    return msg


def stand_and_run(h, wait):
    assert wait(lambda: h.node.latest_state() is not None, timeout=10)
    assert h.wait_mode(wait, "STAND", request=LocoCommand.REQUEST_STAND)
    h.keep_alive(2.2)
    assert h.wait_mode(wait, "RUN", request=LocoCommand.REQUEST_RUN)


def test_cmd_vel_drives_the_controller_and_a_stale_twist_gives_zero(harness, wait):  # noqa: F811
    h, _ = harness()
    pub = h.probe.create_publisher(Twist, "cmd_vel", 10)
    assert wait(lambda: pub.get_subscription_count() > 0, timeout=10)
    # a Twist alone (no operator command at all, then the deadman released) never starts it
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        pub.publish(twist(0.5))
        time.sleep(0.02)
    assert h.status.mode == MODE["PASSIVE"] and list(h.status.command) == [0.0, 0.0, 0.0]
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        pub.publish(twist(0.5))
        h.cmd_pub.publish(LocoCommand(deadman=False))
        time.sleep(0.02)
    assert h.status.mode == MODE["PASSIVE"] and list(h.status.command) == [0.0, 0.0, 0.0]

    stand_and_run(h, wait)
    n_run = len(h.statuses)
    # the deadman held, sticks neutral: the controller's command follows the Twist
    for vx, wz in [(0.4, 0.0), (0.2, 0.5), (-0.3, -0.2)]:

        def follows(vx=vx, wz=wz):
            pub.publish(twist(vx, 0.0, wz))
            h.send()
            return np.allclose(h.status.command, [vx, 0.0, wz], atol=1e-6)

        assert wait(follows, timeout=3, poll=0.02), list(h.status.command)
    assert h.node.velocity_source == "cmd_vel"
    modes = {s.mode for _, s in h.statuses[n_run:]}
    assert modes == {MODE["RUN"]}, modes  # the Twists changed no mode
    # the operator's sticks win
    assert wait(lambda: h.send(vx=0.1) or np.allclose(h.status.command[0], 0.1), timeout=3)
    # the Twists stop; the operator goes on: zero within the staleness limit (0.5 s) + margin
    pub.publish(twist(0.4))
    h.keep_alive(0.1)
    t_last = time.monotonic()
    pub.publish(twist(0.4))
    assert wait(lambda: h.send() or np.allclose(h.status.command, 0.0), timeout=3, poll=0.01)
    stale_after = time.monotonic() - t_last
    print(f"a stale Twist gave zero {stale_after * 1e3:.0f} ms after the last one")
    assert stale_after <= 0.5 + 0.3
    h.keep_alive(0.3)
    assert h.status.mode == MODE["RUN"] and list(h.status.command) == [0.0, 0.0, 0.0]
    # the deadman released: zero at once, whatever the Twist says
    for _ in range(10):
        pub.publish(twist(0.4))
        h.cmd_pub.publish(LocoCommand(deadman=False))
        time.sleep(0.02)
    assert list(h.status.command) == [0.0, 0.0, 0.0]


def test_twist_stamped_where_configured_and_it_never_changes_mode(harness, wait):  # noqa: F811
    from geometry_msgs.msg import TwistStamped

    h, _ = harness(peer_args=None, **{"cmd_vel.stamped": True, "cmd_vel.topic": "nav/cmd_vel"})
    pub = h.probe.create_publisher(TwistStamped, "nav/cmd_vel", 10)
    assert wait(lambda: pub.get_subscription_count() > 0, timeout=10)
    msg = TwistStamped()
    msg.twist.linear.x, msg.twist.angular.z = 0.3, -0.4

    def follows():
        pub.publish(msg)
        h.send()  # the deadman held, sticks neutral; no robot state: PASSIVE throughout
        return h.status is not None and np.allclose(h.status.command, [0.3, 0.0, -0.4])

    assert wait(follows, timeout=5, poll=0.02)
    assert {s.mode for _, s in h.statuses} == {MODE["PASSIVE"]}


class Listener:
    """Subscribes the probe to a topic and keeps (arrival, message)."""

    def __init__(self, h, msg_type, topic, depth=100):
        self.msgs = []
        self.sub = h.probe.create_subscription(
            msg_type, topic, lambda m: self.msgs.append((time.monotonic(), m)), depth
        )

    def rate(self, since):
        times = [t for t, _ in self.msgs if t >= since]
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def test_standard_topics_carry_the_right_types_names_and_rates(harness, wait):  # noqa: F811
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import TwistStamped
    from sensor_msgs.msg import Imu, JointState

    from moe_loco_controller.core import go2

    h, _ = harness()
    joints = Listener(h, JointState, "joint_states")
    imu = Listener(h, Imu, "imu/data")
    velocity = Listener(h, TwistStamped, "moe_loco/estimated_velocity")
    diagnostics = Listener(h, DiagnosticArray, "/diagnostics", depth=10)
    expected = {
        "/joint_states": "sensor_msgs/msg/JointState",
        "/imu/data": "sensor_msgs/msg/Imu",
        "/moe_loco/estimated_velocity": "geometry_msgs/msg/TwistStamped",
        "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
        "/cmd_vel": "geometry_msgs/msg/Twist",
    }

    def advertised():
        names = dict(h.probe.get_topic_names_and_types())
        return all(expected[t] in names.get(t, []) for t in expected)

    assert wait(advertised, timeout=10), h.probe.get_topic_names_and_types()
    stand_and_run(h, wait)
    t0 = time.monotonic()
    h.keep_alive(3.2)
    rates = {
        "joint_states": joints.rate(t0),
        "imu/data": imu.rate(t0),
        "estimated_velocity": velocity.rate(t0),
        "diagnostics": diagnostics.rate(t0 - 2.0),
    }
    print("rates [Hz]: " + ", ".join(f"{k} {v:.2f}" for k, v in rates.items()))
    for name in ("joint_states", "imu/data", "estimated_velocity"):
        assert 40 <= rates[name] <= 60, (name, rates[name])  # 50 Hz, the control rate
    assert 0.8 <= rates["diagnostics"] <= 1.25, rates["diagnostics"]

    js = joints.msgs[-1][1]
    assert list(js.name) == list(go2.URDF_JOINT_NAMES) and js.name[0] == "FL_hip_joint"
    assert len(js.position) == len(js.velocity) == len(js.effort) == 12
    state = h.node.latest_state()  # the kinematic peer holds the default pose: compare by name
    by_name = dict(zip(js.name, js.position, strict=True))
    for i, n in enumerate(go2.JOINT_NAMES):
        assert abs(by_name[n] - state.q[i]) < 0.05, n
    m = imu.msgs[-1][1]
    assert m.header.frame_id == "imu"
    q = (m.orientation.w, m.orientation.x, m.orientation.y, m.orientation.z)
    np.testing.assert_allclose(q, state.quat_wxyz, atol=1e-3)
    v = velocity.msgs[-5][1]  # the status of the same step (same stamp) has arrived too
    assert v.header.frame_id == "base"
    same_step = [s for _, s in h.statuses if s.header.stamp == v.header.stamp]
    assert len(same_step) == 1
    np.testing.assert_allclose(
        [v.twist.linear.x, v.twist.linear.y, v.twist.linear.z],
        same_step[0].estimated_lin_vel,
        atol=1e-6,
    )
    d = diagnostics.msgs[-1][1]
    names = [s.name for s in d.status]
    assert names == [
        "moe_loco: mode",
        "moe_loco: control loop",
        "moe_loco: robot link",
        "moe_loco: policy",
    ]
    levels = [s.level for s in d.status]
    # the loop may WARN of an overrun on a shared machine (SHARED_MACHINE_TIMING's docstring)
    assert levels[0] == levels[2] == levels[3] == b"\x00", [(s.name, s.message) for s in d.status]
    assert levels[1] in (b"\x00", b"\x01"), d.status[1].message
    assert d.status[0].message == "RUN" and d.status[3].message.endswith(".onnx")
    loop = {kv.key: kv.value for kv in d.status[1].values}
    assert 40 <= float(loop["rate [Hz]"]) <= 60, loop
    link = {kv.key: kv.value for kv in d.status[2].values}
    assert link["CRC errors (total)"] == "0" and link["source"] == "unitree"


def test_diagnostics_report_an_injected_fault(harness, wait):  # noqa: F811
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    h, peer = harness()
    diagnostics = Listener(h, DiagnosticArray, "/diagnostics", depth=10)
    assert wait(lambda: h.node.latest_state() is not None, timeout=10)
    assert h.wait_mode(wait, "STAND", request=LocoCommand.REQUEST_STAND)
    peer.kill()  # the robot stops talking: stale state, DAMP latched
    assert h.wait_mode(wait, "DAMP", timeout=5, request=LocoCommand.REQUEST_NONE)
    t_damp = time.monotonic()

    def reported():
        h.send()
        return any(t > t_damp for t, _ in diagnostics.msgs)

    assert wait(reported, timeout=3, poll=0.05)
    status = {s.name: s for s in diagnostics.msgs[-1][1].status}
    mode, link = status["moe_loco: mode"], status["moe_loco: robot link"]
    assert mode.level == DiagnosticStatus.ERROR and "stale_state" in mode.message
    assert mode.message.startswith("DAMP (latched)")
    values = {kv.key: kv.value for kv in mode.values}
    assert values["mode"] == "DAMP" and "stale_state" in values["faults"]
    assert link.level == DiagnosticStatus.ERROR and "robot state stale" in link.message
    assert status["moe_loco: policy"].level == DiagnosticStatus.OK

    # a failure inside the diagnostics themselves is reported, never raised into the executor
    def broken():
        raise RuntimeError("injected reader failure")

    latest, h.link.reader.latest = h.link.reader.latest, broken
    try:
        n = len(diagnostics.msgs)
        h.node.publish_diagnostics()  # what the 1 Hz timer calls
        assert wait(lambda: len(diagnostics.msgs) > n, timeout=3)
        entries = {s.name: s for _, m in diagnostics.msgs[n:] for s in m.status}
        failed = entries["moe_loco: diagnostics"]
        assert (
            failed.level == DiagnosticStatus.ERROR and "injected reader failure" in failed.message
        )
    finally:
        h.link.reader.latest = latest


# ---------------------------------------------------------------------- ROS parameters
def param_clients(h, node):
    from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters, SetParameters

    return {
        name: h.probe.create_client(srv, f"/{node}/{name}")
        for name, srv in (
            ("list_parameters", ListParameters),
            ("get_parameters", GetParameters),
            ("set_parameters", SetParameters),
            ("describe_parameters", DescribeParameters),
        )
    }


def set_request(**values):
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    return SetParameters.Request(
        parameters=[
            Parameter(k.replace("__", "."), value=v).to_parameter_msg() for k, v in values.items()
        ]
    )


def test_parameters_are_listed_read_and_refused_with_a_reason(harness, wait):  # noqa: F811
    from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters
    from rclpy.parameter import parameter_value_to_python

    from moe_loco_controller.core.parameters import node_parameters

    h, _ = harness(peer_args=None, joystick=True)
    for node, kind in (("moe_loco_controller", "controller"), ("moe_loco_joystick", "joystick")):
        c = param_clients(h, node)
        listed = set(h.call(c["list_parameters"], ListParameters.Request()).result.names)
        expected = node_parameters(h.cfg, kind)
        assert set(expected) <= listed, sorted(set(expected) - listed)
        names = sorted(expected)
        got = h.call(c["get_parameters"], GetParameters.Request(names=names)).values
        values = {n: parameter_value_to_python(v) for n, v in zip(names, got, strict=True)}
        for n in names:
            v = values[n]
            assert (list(v) if hasattr(v, "tolist") or isinstance(v, list) else v) == expected[n], n
        described = h.call(c["describe_parameters"], DescribeParameters.Request(names=names))
        read_only = {d.name for d in described.descriptors if d.read_only}
        print(f"{node}: {len(names)} parameters, {len(names) - len(read_only)} changeable")
    # the controller's: an out-of-range value is refused naming the parameter; nothing changes
    c = param_clients(h, "moe_loco_controller")
    res = h.call(c["set_parameters"], set_request(control__command_timeout_s=-1.0)).results[0]
    assert not res.successful and "control.command_timeout_s must be" in res.reason, res.reason
    assert h.node.core.config.command_timeout_s == 0.5
    res = h.call(c["set_parameters"], set_request(link__watchdog_periods=1.0)).results[0]
    assert (
        not res.successful and "read-only" in res.reason and "link.watchdog_periods" in res.reason
    )
    assert h.node.config.link.watchdog_periods == h.cfg.link.watchdog_periods
    res = h.call(c["set_parameters"], set_request(control__command_timeout_s="soon")).results[0]
    assert not res.successful and res.reason, res.reason  # a wrong type
    res = h.call(c["set_parameters"], set_request(cmd_vel__timeout_s=10.0)).results[0]
    assert not res.successful and "cmd_vel.timeout_s must be in (0, 5]" in res.reason
    assert h.node.config.cmd_vel.timeout_s == 0.5
    # and a good one takes effect in the core
    res = h.call(c["set_parameters"], set_request(control__command_timeout_s=0.3)).results[0]
    assert res.successful, res.reason
    assert h.node.core.config.command_timeout_s == 0.3
    assert h.node.config.control.command_timeout_s == 0.3
    # the joystick's deadzone and rate limit
    j = param_clients(h, "moe_loco_joystick")
    res = h.call(j["set_parameters"], set_request(joystick__deadzone=1.5)).results[0]
    assert not res.successful and "joystick.deadzone must be in [0, 1)" in res.reason
    res = h.call(j["set_parameters"], set_request(joystick__max_accel=[1.0, 1.0])).results[0]
    assert not res.successful and "joystick.max_accel" in res.reason
    assert h.joystick.logic.config.deadzone == 0.05
    res = h.call(j["set_parameters"], set_request(joystick__deadzone=0.1)).results[0]
    assert res.successful and h.joystick.logic.config.deadzone == 0.1
    res = h.call(j["set_parameters"], set_request(joystick__max_accel=[2.0, 2.0, 4.0])).results[0]
    assert res.successful and h.joystick.logic.config.max_accel == (2.0, 2.0, 4.0)
