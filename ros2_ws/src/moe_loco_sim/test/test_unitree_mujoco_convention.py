"""Unitree's own MuJoCo simulator as the robot (issue 14): the sim's ``unitree_mujoco`` convention
(LowState_ with ``crc`` 0 once per physics step, a PD from the previous step's sensor values, that
model's joint damping), the controller's CRC policy (``link.crc``: ``off`` only on a simulator
link), and stand gains that survive the one-step-delayed PD: in lockstep and over DDS, the
controller stands the robot up and hands over to the policy with no fault."""

import dataclasses
import time

import numpy as np
import pytest
from bridge_helpers import BridgeProcess, FakePorts, encoded, joy_msg, stand_command

from moe_loco_controller.core import go2
from moe_loco_controller.core.config import ConfigError, load_config
from moe_loco_controller.core.controller import Request
from moe_loco_controller.io import cdr
from moe_loco_controller.io.lowlevel import decode_frame
from moe_loco_sim.bridge import BridgeConfig, SimBridge
from moe_loco_sim.conventions import CONVENTIONS
from moe_loco_sim.lockstep import LockstepConfig, LockstepHarness, operator
from moe_loco_sim.robot import SimRobot
from moe_loco_sim.scene import build_scene

# ---------------------------------------------------------------------- the sim's convention


def test_delayed_pd_uses_the_previous_steps_joint_state():
    """``pd_delay_steps=1``: the torque over a step is the PD of the state one step before."""
    scenes = [build_scene("plane", "menagerie", 0.005) for _ in range(2)]
    now, delayed = SimRobot(scenes[0]), SimRobot(scenes[1], pd_delay_steps=1)
    command = stand_command(kp=50.0, kd=3.5)
    states = []
    for robot in (now, delayed):
        robot.reset("lie")
    for _ in range(40):
        delayed.begin_step()
        states.append((delayed.joint_pos(), delayed.data.qvel[delayed.idx.qvel].copy()))
        delayed.end_step(command)
        if len(states) >= 2:
            q, dq = states[-2]
            expected = np.clip(
                50.0 * (command.q - q) + 3.5 * (0.0 - dq), -go2.TORQUE_LIMIT, go2.TORQUE_LIMIT
            )
            np.testing.assert_allclose(delayed.tau, expected, rtol=0, atol=1e-9)
        now.step(command)
    # the undelayed robot computes from the current state: its torques differ after the first step
    assert np.abs(now.tau - delayed.tau).max() > 1e-3
    with pytest.raises(ValueError, match="pd_delay_steps"):
        SimRobot(scenes[0], pd_delay_steps=2)


def test_the_convention_publishes_crc_zero_once_per_physics_step_with_its_joint_damping():
    ports = FakePorts()
    bridge = SimBridge(BridgeConfig(spawn="stand", rtf=0.0, convention="unitree_mujoco"), ports)
    model = bridge.robot.model
    assert np.all(model.dof_damping[bridge.robot.idx.qvel] == 0.1)
    assert bridge.robot.pd_delay_steps == 1 and bridge.lowstate_hz == 200.0
    ports.inbox = [encoded(stand_command(kp=50.0, kd=3.5))]
    stats = bridge.run(duration=0.5)
    assert stats["convention"] == "unitree_mujoco" and stats["lowcmd_accepted"] == 1
    assert len(ports.sent) == stats["physics_steps"] == 100
    values = cdr.decode_lowstate(ports.sent[-1])
    assert values[cdr.LS_CRC] == 0 != cdr.lowstate_values_crc(values)
    # the controller's verify policy drops such a frame; off uses it
    assert decode_frame(ports.sent[-1], 0.0, verify_crc=True) is None
    state = decode_frame(ports.sent[-1], 0.0, verify_crc=False)
    # (a calf sags ~0.12 rad at Kp 50 without the controller's integral action)
    assert state is not None and np.abs(state.q - go2.DEFAULT_STANDING_POSE).max() < 0.15
    # the robot's convention, for contrast: the CRC is set and the damping is Menagerie's
    ours = SimBridge(BridgeConfig(spawn="stand", rtf=0.0), FakePorts())
    assert np.all(ours.robot.model.dof_damping[ours.robot.idx.qvel] == 2.0)
    assert ours.robot.pd_delay_steps == 0 and ours.lowstate_hz == 500.0
    with pytest.raises(ValueError, match="unknown convention"):
        BridgeConfig(convention="isaac")
    assert sorted(CONVENTIONS) == ["go2", "unitree_mujoco"]


# ---------------------------------------------------------------------- stand gains, lockstep


def _stand_then_run(zero_policy, kp, kd, conv="unitree_mujoco", seed=0):
    control = dataclasses.replace(load_config().control, stand_kp=kp, stand_kd=kd)
    script = [
        operator(0.0),
        operator(0.5, request=Request.STAND),
        operator(3.5, request=Request.RUN),
    ]
    cfg = LockstepConfig(convention=conv, joint_noise=0.02, seed=seed)
    h = LockstepHarness(zero_policy, control, cfg, script=script)
    return h, h.run(5.5)


def test_unitree_stand_gains_chatter_and_fault_under_the_delayed_pd(zero_policy):
    """What a new user saw: Unitree's robot example gains (60 / 5) under unitree_mujoco's PD."""
    _, trace = _stand_then_run(zero_policy, 60.0, 5.0)
    faults = {f for step in trace.faults for f in step}
    assert faults, "Kp 60 / Kd 5 stood without a fault under the one-step-delayed PD"
    assert "RUN" not in [m for _, m in trace.modes_timeline()]
    # the same gains on our own (robot-convention) sim stand: the delay and damping make it
    _, ours = _stand_then_run(zero_policy, 60.0, 5.0, conv="go2")
    assert not any(ours.faults[-1]) and ours.modes_timeline()[-1][1] == "RUN"


@pytest.mark.parametrize("seed", [0, 1])
def test_the_packaged_stand_gains_stand_and_hand_over_under_the_delayed_pd(zero_policy, seed):
    control = load_config().control
    h, trace = _stand_then_run(zero_policy, control.stand_kp, control.stand_kd, seed=seed)
    a = trace.arrays()
    assert [m for _, m in trace.modes_timeline()] == ["PASSIVE", "STAND", "RUN"]
    assert not any(f for step in trace.faults for f in step), trace.faults
    t, q = a["t"], a["joint_pos"]
    standing = (t > 2.6) & (t < 3.5)
    assert np.abs(q[standing] - h.core.action_map.default_pose_sdk).max() < 0.08
    dq = np.abs(np.diff(q[standing], axis=0)).max() / 0.02
    assert dq < 1.0, f"joints move at {dq:.2f} rad/s while standing: chatter"
    assert np.abs(a["joint_torque"][standing]).max() < 15.0
    assert a["base_height"][t > 4.5].min() > 0.27  # and the zero-action policy holds it up


# ---------------------------------------------------------------------- CRC policy


def test_crc_off_is_refused_unless_the_link_is_a_simulators():
    cfg = load_config()
    assert cfg.link.crc == "verify"  # the packaged policy: the robot's frames are checked
    sim = cfg.replace(**{"link.interface": "lo", "link.domain_id": 1, "link.crc": "off"})
    assert sim.link.crc == "off"
    for interface, domain in (("eth0", 1), ("lo", 0), ("eth0", 0)):
        with pytest.raises(ConfigError, match=r"link\.crc: 'off' is allowed only on a simulator"):
            cfg.replace(
                **{"link.interface": interface, "link.domain_id": domain, "link.crc": "off"}
            )
    with pytest.raises(ConfigError, match=r"link\.crc must be one of"):
        cfg.replace(**{"link.crc": "ignore"})


def test_bringup_passes_crc_and_the_link_refuses_off_on_the_robot():
    from moe_loco_controller.io.link import LinkError, UnitreeLink
    from moe_loco_controller.nodes.bringup import parse_args, resolve_config

    cfg = resolve_config(parse_args(["--sim", "--crc", "off"]))
    assert (cfg.link.crc, cfg.link.interface, cfg.link.domain_id) == ("off", "lo", 1)
    with pytest.raises(ConfigError, match="simulator"):
        resolve_config(parse_args(["--crc", "off"]))  # the packaged link is eth0 / domain 0
    # the link itself refuses too (a caller that builds one without the config), before any DDS
    with pytest.raises(LinkError, match="simulator link"):
        UnitreeLink(0, "eth0", False, 0.0, verify_crc=False)


# ---------------------------------------------------------------------- over DDS


@pytest.fixture
def ros():
    import rclpy

    rclpy.init()
    yield
    rclpy.try_shutdown()


def test_verify_drops_every_frame_of_unitrees_simulator_and_says_why(unitree_channels, wait):
    """What a new user saw first: every frame refused. Now the diagnostics name the cause."""
    from moe_loco_controller.core.diagnostics import LinkHealth, _link_entry
    from moe_loco_controller.io.lowlevel import LowStateReader

    bridge = BridgeProcess(unitree_channels, "--convention", "unitree_mujoco", "--spawn", "stand")
    got = []
    reader = LowStateReader(on_state=got.append)
    try:
        assert wait(lambda: bridge.last is not None and reader.bad_crc >= 20, timeout=20)
        assert not got and reader.frames == 0 and reader.zero_crc == reader.bad_crc
    finally:
        reader.close()
        bridge.close()
    health = LinkHealth("unitree", 0.01, 0.06, reader.bad_crc, 20, zero_crc_new=20)
    entry = _link_entry(health)
    assert "link.crc: off" in entry.message


def test_unitree_convention_stand_up_hand_over_no_fault(
    ros, unitree_channels, zero_policy, wait, spinner
):
    """``moe-loco-sim --convention unitree_mujoco`` + controller (``link.crc: off``) + joystick:
    stand up on the packaged gains, hand over to the policy, e-stop, with no fault."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Joy

    from moe_loco_controller.core.policy import PolicyRuntime
    from moe_loco_controller.io.link import UnitreeLink
    from moe_loco_controller.nodes.controller_node import ControllerNode
    from moe_loco_controller.nodes.joystick_node import JoystickNode
    from moe_loco_msgs.msg import ControllerStatus

    bridge = BridgeProcess(unitree_channels, "--convention", "unitree_mujoco")
    cfg = load_config().replace(
        **{
            "link.interface": "lo",
            "link.domain_id": unitree_channels,
            "link.release_sport_mode": False,
            "link.other_publisher_check_s": 0.0,
            "link.crc": "off",
            # the wider limits of moe_loco_controller/test/shared_machine.py (a shared CI runner)
            "link.watchdog_periods": 8,
            "safety.stale_state_periods": 8.0,
        }
    )
    logs = []
    link = UnitreeLink(unitree_channels, "lo", False, 0.0, log=logs.append, verify_crc=False)
    assert any("CRC check OFF" in line for line in logs)
    node = ControllerNode(cfg, zero_policy, link)
    joystick = JoystickNode(cfg.joystick, PolicyRuntime(zero_policy).metadata, cfg.namespace)
    probe = Node("probe")
    statuses = []
    probe.create_subscription(ControllerStatus, "moe_loco/status", statuses.append, 50)
    joy_pub = probe.create_publisher(Joy, "joy", 10)
    executor = SingleThreadedExecutor()
    for n in (node, joystick, probe):
        executor.add_node(n)
    spin = spinner(executor)
    node.start()
    held = ["deadman"]
    stand = cfg.control
    default = node.core.action_map.default_pose_sdk
    torques = []

    def joy_until(predicate, timeout):
        def step():
            joy_pub.publish(joy_msg(*held))
            if bridge.last is not None:
                torques.append((bridge.last["kp"][0], np.abs(bridge.last["tau"]).max()))
            return predicate()

        return wait(step, timeout=timeout, poll=0.02)

    def mode(name):
        return lambda: bool(statuses) and statuses[-1].mode == getattr(ControllerStatus, name)

    def standing(kp):
        r = bridge.last
        return (
            r is not None
            and r["kp"] == [kp] * 12
            and r["upright"] > 0.99
            and r["base_pos"][2] > 0.27
            and np.abs(np.array(r["q"]) - default).max() < 0.08
        )

    try:
        assert wait(lambda: bridge.last is not None, timeout=20), "the bridge did not start"
        assert bridge.last["convention"] == "unitree_mujoco"
        assert wait(lambda: node.latest_state() is not None, timeout=10), "no rt/lowstate used"
        assert joy_until(lambda: joy_pub.get_subscription_count() > 0 and statuses, 10)
        assert statuses[-1].mode == ControllerStatus.MODE_PASSIVE

        held = ["deadman", "stand"]
        assert joy_until(mode("MODE_STAND"), 10)
        held = ["deadman"]
        assert joy_until(lambda: standing(stand.stand_kp), 15), bridge.last
        t0 = time.monotonic()
        assert joy_until(lambda: time.monotonic() - t0 > 1.0, 5)
        assert standing(stand.stand_kp) and statuses[-1].mode == ControllerStatus.MODE_STAND

        held = ["deadman", "run"]
        assert joy_until(mode("MODE_RUN"), 10), [(s.mode, list(s.faults)) for s in statuses[-3:]]
        held = ["deadman"]
        assert joy_until(lambda: bridge.last["kp"] == [40.0] * 12, 5)  # the policy's gains
        t1 = time.monotonic()
        assert joy_until(lambda: time.monotonic() - t1 > 1.5, 5)
        assert statuses[-1].mode == ControllerStatus.MODE_RUN and not list(statuses[-1].faults)
        assert bridge.last["upright"] > 0.99 and bridge.last["base_pos"][2] > 0.27

        held = ["deadman", "estop"]
        assert joy_until(mode("MODE_DAMP"), 5)
        assert list(statuses[-1].faults) == ["estop"]  # the only fault of the run
    finally:
        node.stop()
        spin.stop()
        for n in (node, joystick, probe):
            n.destroy_node()
        link.close()
        bridge.close()
    assert all(s.bad_crc_frames == 0 for s in statuses)
    # (before the first frame arrives, PASSIVE reports no_state: that is not a fault of the run)
    first = next(i for i, s in enumerate(statuses) if s.mode != ControllerStatus.MODE_PASSIVE)
    faults = {f for s in statuses[first:] for f in s.faults}
    assert faults == {"estop"}, faults
    # no chatter: the applied torque stayed well inside the motors' limits while standing
    stand_tau = [tau for kp, tau in torques if kp == stand.stand_kp]
    assert stand_tau and max(stand_tau) < 20.0, max(stand_tau)
    assert bridge.proc.returncode == 0
