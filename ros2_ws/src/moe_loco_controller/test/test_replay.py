"""Replay: a recorded 31 s controller run reproduces every joint target; service calls between
steps, late-starting and truncated bags, injected faults, node mode over ROS, clear errors."""

import shutil

import numpy as np
import pytest
import run_factory
import yaml
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from shared_machine import SHARED_MACHINE_TIMING

from moe_loco_controller.bag import MSG_TYPES, BagWriter, read_bag, topic_types, typestore
from moe_loco_controller.core.config import load_config, to_dict
from moe_loco_controller.core.controller import Mode
from moe_loco_controller.nodes import replay
from moe_loco_controller.nodes.replay import Faults, load_run, main, replay_core, service_calls
from moe_loco_msgs.msg import LocoCommand

STATUS = "/moe_loco/status"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 31 s run (stand, walk, gait switches by joystick and by service, expert-scale changes,
    e-stop, reset, joystick dropout, link fault) recorded with the packaged configuration; the
    policy lies beside the bag, where replay looks for it by the name the statuses give."""
    d = tmp_path_factory.mktemp("demo")
    policy = run_factory.write_random_policy(d / "demo_policy.onnx")
    info = run_factory.record_run(d / "bag", policy, load_config(), run_factory.demo_script())
    return info


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    """A 3.2 s run with a 0.5 s stand-up, its configuration written as YAML for the CLI (with the
    shared machine's timing limits: node mode replays in real time)."""
    d = tmp_path_factory.mktemp("short")
    cfg = load_config().replace(**{"control.stand_duration_s": 0.5, **SHARED_MACHINE_TIMING})
    (d / "controller.yaml").write_text(yaml.safe_dump(to_dict(cfg)))
    policy = run_factory.write_random_policy(d / "short_policy.onnx", seed=3)
    info = run_factory.record_run(d / "bag", policy, cfg, run_factory.short_script())
    return info, cfg, d / "controller.yaml"


# ---------------------------------------------------------------------- core mode
def test_record_replay_of_a_30s_run_reproduces_every_joint_target(demo, capsys):
    assert demo.steps * run_factory.DT >= 30.0
    modes = run_factory.mode_timeline(demo.modes)
    assert modes == ["PASSIVE", "STAND", "RUN", "DAMP"] * 2 + ["PASSIVE", "STAND", "RUN"], modes
    assert set(demo.gaits) == {0, 1}
    run = load_run(demo.bag)
    damp_entries = [
        (round(s.control_time - run_factory.T0), s.faults)
        for prev, s in zip(run.steps, run.steps[1:], strict=False)
        if s.mode == Mode.DAMP and prev.mode != Mode.DAMP
    ]
    assert damp_entries == [(17, ("estop",)), (26, ("other_lowcmd_publisher",))], damp_entries

    assert main([str(demo.bag)]) == 0  # the policy named in the bag, found beside it
    out = capsys.readouterr().out
    assert f"summary: {demo.steps} steps compared, max |diff| = 0 " in out, out
    assert "all joint targets match" in out

    assert run.pairing == "by header stamp" and not run.notes
    report = replay_core(run, demo.policy, load_config())
    assert report.ok and report.steps_compared == demo.steps >= 1500
    assert report.max_diff <= 1e-6


def test_service_calls_between_steps_are_reproduced(demo, monkeypatch):
    """A gait set by service holds until the operator's gait *changes*; the replay finds such
    switches (and expert-scale changes) in the statuses and makes them before their step."""
    run = load_run(demo.bag)
    calls = service_calls(run, gaits=2)
    by_step = {run.steps[k].step: c for k, c in calls.items()}
    gait_steps = [s for s, c in by_step.items() if "gait" in c]
    scale_steps = [s for s, c in by_step.items() if "scale" in c]
    assert len(gait_steps) == 1 and len(scale_steps) == 2, by_step
    # at the service's gait switch the operator still asks for the bipedal gait (no edge)
    k = next(i for i, s in enumerate(run.steps) if s.step == gait_steps[0])
    assert run.steps[k].operator.gait == 1 and run.steps[k].gait == 0
    assert all(
        run.steps[i].mode == Mode.RUN
        for i in (k, *(run.steps.index(s) for s in run.steps if s.step in scale_steps))
    )

    for dropped, step, what in (("gait", gait_steps[0], "q["), ("scale", scale_steps[0], "gate")):
        real = service_calls

        def without(run_, gaits, dropped=dropped, real=real):
            out = real(run_, gaits)
            return {k: {n: v for n, v in c.items() if n != dropped} for k, c in out.items()}

        monkeypatch.setattr(replay, "service_calls", without)
        report = replay_core(run, demo.policy, load_config())
        assert not report.ok
        assert report.first_divergence.step == step, report.format()
        assert report.first_divergence.what.startswith(what), report.format()
    monkeypatch.undo()


def test_service_gait_detection_follows_the_cores_edge_rule(demo):
    """Checked step by step against the core's own record of the last operator gait."""
    run = load_run(demo.bag)
    core = replay.ControlCore(replay.PolicyRuntime(demo.policy), load_config().control)
    calls = service_calls(run, gaits=2)
    plan, _ = replay.plan_deliveries(run, Faults())
    for k, s in enumerate(run.steps):
        g = s.operator.gait if s.operator is not None else 0
        edge = g != core._operator_gait
        assert ("gait" in calls.get(k, {})) == (not edge and s.gait != core.gait), s.step
        if "gait" in calls.get(k, {}):
            core.set_gait(calls[k]["gait"], run.steps[k - 1].control_time)
        if "scale" in calls.get(k, {}):
            core.policy.set_expert_scale(calls[k]["scale"])
        d = plan[k]
        state = None
        if d is not None:
            state = replay.robot_state_from_msg(replay.delivered_msg(run, d), d.arrival)
        result = core.step(state, s.operator, s.control_time, tuple((f, f) for f in s.link_faults))
        assert result.status.gait == s.gait


def test_a_bag_that_starts_late_replays_from_its_first_passive_step(demo, tmp_path, capsys):
    full = read_bag(demo.bag)
    t_cut = full.messages[0][1] + int(5e9)  # the recorder started 5 s late, in RUN
    with BagWriter(tmp_path / "late", topic_types()) as w:
        for topic, t, data in full.messages:
            if t >= t_cut:
                w.write(topic, t, data)
    run = load_run(tmp_path / "late")
    assert run.steps[0].mode == Mode.PASSIVE and run.steps[0].step > 250
    assert any("starts at controller step" in n for n in run.notes)
    report = replay_core(run, demo.policy, load_config())
    assert report.ok and report.steps_compared == len(run.steps) > 500, report.format()
    shutil.copy(demo.policy, tmp_path)
    assert main([str(tmp_path / "late")]) == 0
    assert "replaying from step" in capsys.readouterr().err


def test_a_truncated_bag_replays_its_readable_prefix_with_a_warning(demo, tmp_path, capsys):
    src = demo.bag / "bag.mcap"
    cut = tmp_path / "cut.mcap"
    data = src.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.8)])
    shutil.copy(demo.policy, tmp_path)
    assert main([str(cut)]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and "no MCAP footer" in captured.err, captured.err
    compared = int(captured.out.split("\nsummary: ")[1].split(" steps")[0])
    assert 0 < compared < demo.steps


# ---------------------------------------------------------------------- faults
@pytest.mark.parametrize(
    ("args", "damp_fault"),
    [
        (["--drop", "5"], "stale_state"),
        (["--corrupt", "1"], "bad_state"),
        (["--delay-ms", "10"], None),  # one period late: old data, never stale
        (["--delay-ms", "100", "--seed", "3"], "stale_state"),  # a latency onset
    ],
)
def test_fault_options_show_the_divergence_and_the_safety_reaction(demo, capsys, args, damp_fault):
    assert main([str(demo.bag), *args]) == 1
    out = capsys.readouterr().out
    assert "faults from step" in out and "first divergence at step" in out, out
    if damp_fault is None:
        assert "safety reaction" not in out
    else:
        assert "safety reaction: the replay entered DAMP" in out and damp_fault in out, out


def test_faults_start_where_asked(demo):
    run = load_run(demo.bag)
    step = next(s.step for s in run.steps if s.mode == Mode.RUN)
    report = replay_core(run, demo.policy, load_config(), Faults(corrupt=1, at_step=step))
    assert report.damp == (step, ("bad_state",))
    assert report.first_divergence.step == step


# ---------------------------------------------------------------------- node mode
def test_node_mode_replays_over_ros_in_real_time(short, capsys):
    info, _cfg, config_file = short
    assert run_factory.mode_timeline(info.modes) == ["PASSIVE", "STAND", "RUN", "DAMP"]
    assert main([str(info.bag), "--mode", "node", "--config", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert f"summary: {info.steps} steps compared, max |diff| = 0 " in out, out
    assert "node vs core at the node's clock 0)" in out, out


def test_node_mode_with_a_corrupt_frame_damps(short):
    info, cfg, _ = short
    run = load_run(info.bag)
    step = next(s.step for s in run.steps if s.mode == Mode.RUN) + 10
    report = replay.replay_node(run, info.policy, cfg, Faults(corrupt=1, at_step=step))
    assert report.damp == (step, ("bad_state",)), report.format()
    assert report.first_divergence.step == step and report.node_core_max_diff == 0.0


# ---------------------------------------------------------------------- mirror-input bags
def as_mirror_input(demo, path, late_s=0.025, wrong_step=None):
    """The demo bag as a controller fed on moe_loco/robot_state would have recorded it: one
    message per distinct frame, stamped by its sender, reaching the recorder ``late_s`` after
    the step that used it (more than a control period: later than any arrival-time pairing
    tolerates); each status names its frame's stamp (``wrong_step``: the previous frame's)."""
    from builtin_interfaces.msg import Time
    from rclpy.serialization import deserialize_message

    from moe_loco_msgs.msg import ControllerStatus
    from moe_loco_msgs.msg import RobotState as RobotStateMsg

    bag = read_bag(demo.bag)
    state_topic = "/moe_loco/robot_state"
    by_stamp = {}
    for topic, _, data in bag.messages:
        if topic == state_topic:
            m = deserialize_message(data, RobotStateMsg)
            by_stamp[(m.header.stamp.sec, m.header.stamp.nanosec)] = m
    messages, stamps = [], []
    for topic, t, data in bag.messages:
        if topic == state_topic:
            continue
        if topic == STATUS:
            msg = deserialize_message(data, ControllerStatus)
            mirror = by_stamp.get((msg.header.stamp.sec, msg.header.stamp.nanosec))
            if mirror is not None:
                ns = round((1.7e9 + mirror.receive_time) * 1e9)  # the sender's stamp
                if not stamps or stamps[-1] != ns:  # a new frame: one message
                    stamps.append(ns)
                    mirror.header.stamp = Time(sec=ns // 10**9, nanosec=ns % 10**9)
                    messages.append(
                        (state_topic, t + round(late_s * 1e9), serialize_message(mirror))
                    )
                use = stamps[-2] if msg.step == wrong_step and len(stamps) > 1 else stamps[-1]
                msg.state_stamp = Time(sec=use // 10**9, nanosec=use % 10**9)
            data = serialize_message(msg)
        messages.append((topic, t, data))
    messages.sort(key=lambda m: m[1])
    write_bag(path, {n: i.msgtype for n, i in bag.topics.items()}, messages)
    return path


def test_a_mirror_input_bag_pairs_each_step_with_its_frame_by_stamp(demo, tmp_path):
    """Frames recorded a period and more after the step that used them (a busy recorder) still
    pair exactly: the status names the frame's stamp. The same bag with one step pointed at the
    previous frame diverges at that step (the check can fail)."""
    run = load_run(as_mirror_input(demo, tmp_path / "mirror.mcap"))
    assert run.pairing == "by header stamp (mirror-input bag)" and not run.notes, run.notes
    report = replay_core(run, demo.policy, load_config())
    assert report.ok and report.steps_compared == demo.steps, report.format()

    step = next(s.step for s in run.steps if s.mode == Mode.RUN) + 50
    run = load_run(as_mirror_input(demo, tmp_path / "wrong.mcap", wrong_step=step))
    report = replay_core(run, demo.policy, load_config())
    assert not report.ok and report.first_divergence.step == step, report.format()


# ---------------------------------------------------------------------- unusable bags
def write_bag(path, topics, messages, store=None):
    """A bag with ``topics`` {name: type} (types from ``store``) and raw ``messages``."""
    store = store or typestore()
    w = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    w.open()
    conns = {t: w.add_connection(t, ty, typestore=store) for t, ty in topics.items()}
    for topic, t, data in messages:
        w.write(conns[topic], t, data)
    w.close()
    return path


def other_status_store():
    """A typestore where moe_loco_msgs/msg/ControllerStatus has other fields."""
    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg("uint64 step\nfloat32 speed\n", MSG_TYPES["status"]))
    store.register(get_types_from_msg("uint64 step\n", MSG_TYPES["joint_command"]))
    store.register(get_types_from_msg("uint64 tick\n", MSG_TYPES["robot_state"]))
    return store


def unusable(kind, tmp_path, demo):
    p = tmp_path / kind
    if kind == "missing":
        return p, "no such file or directory"
    if kind == "not_a_bag":
        p = tmp_path / "notes.mcap"
        p.write_text("just text\n")
        return p, "not a bag: no MCAP magic"
    if kind == "junk_directory":
        p.mkdir()
        (p / "readme.txt").write_text("x")
        return p, "not a rosbag2 bag: no metadata.yaml and no .mcap file"
    if kind == "empty":
        p = tmp_path / "empty.mcap"
        p.write_bytes(b"")
        return p, "empty file"
    if kind == "header_only":
        p = tmp_path / "header.mcap"
        p.write_bytes((demo.bag / "bag.mcap").read_bytes()[:40])
        return p, "truncated: nothing readable"
    if kind == "missing_topics":
        cmd = serialize_message(LocoCommand())
        write_bag(p, topic_types(names=["command"]), [("/moe_loco/command", 1, cmd)])
        return p, f"no messages on {STATUS}"
    if kind == "wrong_type":
        store = get_typestore(Stores.ROS2_KILTED)
        msg = store.types["std_msgs/msg/String"](data="hi")
        data = store.serialize_cdr(msg, "std_msgs/msg/String")
        write_bag(p, {STATUS: "std_msgs/msg/String"}, [(STATUS, 1, data)], store)
        return p, f"{STATUS} has type std_msgs/msg/String, expected {MSG_TYPES['status']}"
    if kind == "other_definition":
        store = other_status_store()
        topics = topic_types(names=["status", "joint_command", "robot_state"])
        msgs = []
        for topic, msgtype in topics.items():
            fields = {"step": 1, "speed": 1.0} if msgtype == MSG_TYPES["status"] else {}
            if msgtype == MSG_TYPES["joint_command"]:
                fields = {"step": 1}
            if msgtype == MSG_TYPES["robot_state"]:
                fields = {"tick": 1}
            msgs.append((topic, 1, store.serialize_cdr(store.types[msgtype](**fields), msgtype)))
        write_bag(p, topics, msgs, store)
        return p, "definition of moe_loco_msgs/msg/ControllerStatus differs from ours"
    if kind == "damaged_message":
        topics = topic_types(names=["status", "joint_command", "robot_state"])
        junk = bytes(range(7, 250, 3))
        write_bag(p, topics, [(t, 1, junk) for t in topics])
        return p, "on /moe_loco/status cannot be deserialized as ControllerStatus"
    if kind == "policy_not_found":
        shutil.copytree(demo.bag, p)  # without the policy beside it
        return p, "recorded with policy 'demo_policy.onnx', which is not in"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "not_a_bag",
        "junk_directory",
        "empty",
        "header_only",
        "missing_topics",
        "wrong_type",
        "other_definition",
        "damaged_message",
        "policy_not_found",
    ],
)
def test_unusable_bags_give_a_clear_error(kind, tmp_path, demo, capsys):
    path, reason = unusable(kind, tmp_path, demo)
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("moe-loco-replay: ") and "Traceback" not in err
    assert reason in err, err
    if kind != "policy_not_found":
        assert str(path) in err, err


def test_the_arrays_compared_are_the_wire_values():
    """float32 on the wire: a replayed float64 target equal after the cast is a match."""
    a = np.array([0.1, 2.146e9, np.nan])
    b = np.asarray(a, dtype=np.float32)
    assert replay._abs_diff(np.asarray(a, dtype=np.float32), b).max() == 0.0


# ---------------------------------------------------------------------- hostile bags (exit 2)
def rewritten(demo, path, change):
    """The demo bag with ``change(status)`` applied to each recorded status (a copy)."""
    from rclpy.serialization import deserialize_message

    from moe_loco_msgs.msg import ControllerStatus

    bag = read_bag(demo.bag)
    messages = []
    for topic, t, data in bag.messages:
        if topic == STATUS:
            msg = deserialize_message(data, ControllerStatus)
            change(msg)
            data = serialize_message(msg)
        messages.append((topic, t, data))
    write_bag(path, {n: i.msgtype for n, i in bag.topics.items()}, messages)
    shutil.copy(demo.bag.parent / "demo_policy.onnx", path.parent / "demo_policy.onnx")
    return path


def at_step(n, **fields):
    def change(msg):
        if msg.step == n:
            for k, v in fields.items():
                setattr(msg, k, v)

    return change


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"mode": 7}, "mode 7 is no controller mode"),
        ({"gait": 5}, "recorded in gait 5; this policy has 2 gaits"),
        ({"expert_scale": [float("nan")] * 6}, "expert scale must be finite"),
        ({"expert_scale": [1.0] * 4}, "one weight per expert (6), got shape (4,)"),
        ({"expert_scale": [0.0] * 6}, "must not be all zero"),
    ],
)
def test_a_status_the_policy_cannot_replay_is_an_unusable_bag(
    demo, tmp_path, capsys, fields, reason
):
    path = rewritten(demo, tmp_path / "bag.mcap", at_step(40, **fields))
    assert main([str(path)]) == 2  # used to be a traceback and exit 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and reason in err, err


def test_a_policy_of_another_expert_count_is_refused_before_replaying(demo, tmp_path, capsys):
    import policy_factory

    other = tmp_path / "four_experts.onnx"
    policy_factory.write_policy(other, num_experts=4)
    assert main([str(demo.bag), "--policy", str(other)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "this policy has" in err, err


def test_a_footerless_bag_with_a_name_that_is_not_utf8_is_unusable(demo, tmp_path, capsys):
    data = bytearray((demo.bag / "bag.mcap").read_bytes())
    at = data.find(MSG_TYPES["status"].encode())
    assert at > 0
    data[at] = 0xFF  # the schema's name is no longer UTF-8
    path = tmp_path / "cut.mcap"
    # and the footer is gone (cut inside the summary: the recorder may have written the whole
    # run as one chunk, and a cut through it leaves nothing to read, name or not)
    path.write_bytes(bytes(data[: len(data) - 64]))
    assert main([str(path)]) in (1, 2)  # used to be a UnicodeDecodeError traceback
    err = capsys.readouterr().err
    assert "Traceback" not in err and "not UTF-8" in err, err


def test_an_invalid_namespace_is_refused_by_replay_and_record(demo, tmp_path, capsys):
    from moe_loco_controller.nodes import recorder

    assert main([str(demo.bag), "--namespace", "bad ns!"]) == 2
    assert "invalid ROS namespace 'bad ns!'" in capsys.readouterr().err
    out = tmp_path / "never"
    assert recorder.main(["-o", str(out), "--namespace", "bad_ns!", "--duration", "0.1"]) == 2
    assert "invalid ROS namespace" in capsys.readouterr().err
    assert not out.exists()  # no 43-byte bag left behind
