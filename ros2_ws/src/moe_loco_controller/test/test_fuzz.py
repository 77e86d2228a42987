"""Property-based fuzzing (Hypothesis) of every input the controller takes from outside.

Targets: LowState_ decode + safety (and the command that results), the policy-metadata parser,
the config loader, the service and operator-command handlers of the real node, the bag reader,
and replay. The property of each: the input is accepted, or refused with the documented error
(PolicyFileError, ConfigError, BagError/ReplayError, a refused service reply, a refusal event);
any other exception is a crash. And whatever a control step produces passes the command check.

A crash is counted and recorded (not raised at once), so that a campaign runs every case; the
test then fails listing the first crashes. ``MOE_LOCO_FUZZ_EXAMPLES`` sets the cases per target
(default 60 here, in ``make test``; ``make fuzz`` runs 100000); with ``MOE_LOCO_FUZZ_REPORT``
set to a directory each target writes its counts there (``scripts/fuzz.py`` sums them up).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import struct
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moe_loco_controller.core import go2
from moe_loco_controller.core.command_guard import check_policy_bounds, command_problems
from moe_loco_controller.core.config import ConfigError, from_dict, parse_yaml, to_dict
from moe_loco_controller.core.config import load_config as load_config_file
from moe_loco_controller.core.controller import ControlCore, Mode, OperatorCommand
from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_controller.core.policy_metadata import PolicyFileError, PolicyMetadata
from moe_loco_controller.io import cdr
from moe_loco_controller.io.lowlevel import decode_frame

EXAMPLES = int(os.environ.get("MOE_LOCO_FUZZ_EXAMPLES", "60"))
REPORT = os.environ.get("MOE_LOCO_FUZZ_REPORT")
BATCH = 2000
"""Hypothesis keeps a tree of every case of a run (it slows down and grows past 1 GB towards
10**5 cases), so a long campaign is many runs of at most this many cases, each freshly seeded."""
FUZZ = settings(
    max_examples=min(EXAMPLES, BATCH),
    deadline=None,
    database=None,  # no .hypothesis/ directory in the tree
    suppress_health_check=list(HealthCheck),
    derandomize=EXAMPLES <= 1000,  # make test: the same cases every run
)


@dataclass
class Tally:
    """Cases and crashes of one target; the first few crashes with their input."""

    name: str
    cases: int = 0
    crashes: int = 0
    first: list[str] = field(default_factory=list)

    def run(self, case: Callable[[], None], describe: Callable[[], str]) -> None:
        self.cases += 1
        try:
            case()
        except Exception as e:
            self.crashes += 1
            if len(self.first) < 3:
                tb = traceback.format_exception(e)[-3:]
                self.first.append(f"{describe()[:400]}\n{''.join(tb)}")

    def campaign(self, target: Callable[..., None], *args: object) -> None:
        """Run the Hypothesis target ``target(*args, self)`` until ``EXAMPLES`` cases have run
        (one run in ``make test``; batches of ``BATCH`` in a long campaign), then report."""
        while self.cases < EXAMPLES:
            before = self.cases
            target(*args, self)
            if self.cases == before:  # the strategy has no more distinct cases to give
                break
        self.finish()

    def finish(self) -> None:
        if REPORT:
            Path(REPORT, f"{self.name}.json").write_text(
                json.dumps({"cases": self.cases, "crashes": self.crashes, "first": self.first})
            )
        print(f"fuzz {self.name}: cases={self.cases} crashes={self.crashes}")
        assert self.crashes == 0, f"{self.crashes} crashes in {self.cases} cases:\n" + "\n".join(
            self.first
        )


# ---------------------------------------------------------------------- values
f32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
# what a ROS message float32 field takes (rosidl's bound is 3.402823466e38, a hair under
# float32's largest finite value): a value beyond it cannot even be sent
f32_msg = f32.filter(lambda v: not (math.isfinite(v) and abs(v) > 3.402823466e38))
HOSTILE_FLOATS = (
    math.nan,
    math.inf,
    -math.inf,
    1e39,
    -1e39,
    1e-46,
    1e300,
    3.5e38,
    -0.0,
    0.0,
    0.25,
    -1.5,
    40.0,
)
HOSTILE_INTS = (0, 1, -1, 6, 12, 255, 256, 2**31, 2**63, 10**12, 10**309, -(10**400))


def random_value(rng: random.Random, depth: int = 0) -> object:
    """A JSON-able value from a hostile vocabulary: huge integers, non-finite and float32-
    overflowing floats, odd strings, nested and (rarely) very deep containers."""
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.15:
        return rng.random() < 0.5
    if roll < 0.35:
        return rng.choice(HOSTILE_INTS) if rng.random() < 0.7 else rng.randint(-(2**40), 2**40)
    if roll < 0.6:
        return rng.choice(HOSTILE_FLOATS) if rng.random() < 0.7 else rng.uniform(-10, 10)
    if roll < 0.75:
        return rng.choice(["", "quadrupedal", "bipedal", "walk", "x" * 300, "\u00e9\ud7ff", "0"])
    if depth > 3:
        return [] if rng.random() < 0.5 else {}
    if roll < 0.9:
        if rng.random() < 0.02:
            deep: object = []
            for _ in range(rng.randint(100, 3000)):
                deep = [deep]
            return deep
        return [random_value(rng, depth + 1) for _ in range(rng.choice((0, 1, 2, 3, 12, 13)))]
    return {rng.choice(["a", "dim", "name", "scale", ""]): random_value(rng, depth + 1)
            for _ in range(rng.randint(0, 3))}  # fmt: skip


def mutate(doc: object, rng: random.Random, depth: int = 0) -> object:
    """``doc`` with one value somewhere inside replaced, dropped, added or descended into."""
    if isinstance(doc, dict) and doc and depth < 6 and rng.random() < 0.75:
        key = rng.choice(sorted(doc, key=str))
        out = dict(doc)
        action = rng.choice(("descend", "descend", "replace", "drop", "add"))
        if action == "descend":
            out[key] = mutate(doc[key], rng, depth + 1)
        elif action == "replace":
            out[key] = random_value(rng)
        elif action == "drop":
            del out[key]
        else:
            out[rng.choice(["extra", key + "_", "x"])] = random_value(rng)
        return out
    if isinstance(doc, list) and doc and depth < 6 and rng.random() < 0.75:
        i = rng.randrange(len(doc))
        out = list(doc)
        action = rng.choice(("descend", "descend", "replace", "drop", "append"))
        if action == "descend":
            out[i] = mutate(doc[i], rng, depth + 1)
        elif action == "replace":
            out[i] = random_value(rng)
        elif action == "drop":
            del out[i]
        else:
            out.append(random_value(rng))
        return out
    return random_value(rng)


@st.composite
def mutated(draw: Callable, base: object) -> object:
    """1-3 mutations of ``base``, their choices from a Hypothesis-controlled random generator."""
    rng = draw(st.randoms(use_true_random=False))
    doc = base
    for _ in range(rng.randint(1, 3)):
        doc = mutate(doc, rng)
    return doc


# ---------------------------------------------------------------------- shared fixtures
@pytest.fixture(scope="module")
def policy_path(tmp_path_factory):
    import policy_factory

    return policy_factory.write_policy(tmp_path_factory.mktemp("fuzz") / "fuzz_policy.onnx")


@pytest.fixture(scope="module")
def core(policy_path):
    return ControlCore(PolicyRuntime(policy_path))


def force_mode(core: ControlCore, mode: Mode, now: float) -> None:
    """Put a core straight into ``mode`` (fuzzing reaches every mode without replaying a run)."""
    core.latched.clear()
    core.mode = mode
    core._stand_from = core.action_map.default_pose_sdk.copy()
    core._stand_t0 = now - 1.0
    core._ticks.__init__()


# ---------------------------------------------------------------------- 1. LowState_ + safety
def _lowstate_template() -> list:
    values = list(cdr._LOWSTATE_C.unpack(bytes(cdr._LOWSTATE_C.size)))
    values[cdr.LS_QUAT] = 1.0
    values[cdr.LS_ACC + 2] = 9.81
    for i, b in enumerate(cdr.LS_MOTOR_Q[:12]):
        values[b] = float(go2.DEFAULT_STANDING_POSE[i])
    return values


FLOAT_SLOTS = sorted(
    {cdr.LS_QUAT + i for i in range(10)} | {b + k for b in cdr.LS_MOTOR_Q[:12] for k in range(4)}
)


@st.composite
def lowstate_frames(draw: Callable) -> tuple[bytes, int]:
    values = _lowstate_template()
    for slot in draw(st.lists(st.sampled_from(FLOAT_SLOTS), max_size=12)):
        values[slot] = draw(st.one_of(f32, st.floats(-5.0, 5.0, width=32)))
    tick = draw(st.integers(0, 2**32 - 1))
    values[cdr.LS_TICK] = tick
    remote = draw(st.binary(min_size=40, max_size=40))
    values[cdr.LS_REMOTE : cdr.LS_REMOTE + 40] = list(remote)
    data = bytearray(cdr.encode_lowstate(values))
    for pos, byte in draw(
        st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=3)
    ):
        data[pos] = byte
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    return bytes(data if cut is None else data[:cut]), tick


@given(frame=lowstate_frames(), mode=st.sampled_from(list(Mode)), age=st.floats(0.0, 0.2))
@FUZZ
def _lowstate_case(core, tally, frame, mode, age):
    data, _ = frame
    now = 100.0

    def case():
        try:
            state = decode_frame(data, now - age)
        except ValueError:  # not a LowState_ at all: the reader counts it and drops it
            return
        if state is None:  # bad CRC: dropped
            return
        force_mode(core, mode, now)
        for k in range(3):  # the same frame three steps running: stale, frozen, or fine
            r = core.step(state, OperatorCommand(deadman=True, stamp=now), now + 0.02 * k)
            problems = command_problems(r.command)
            assert not problems, problems
            if r.status.mode == Mode.DAMP and mode != Mode.DAMP:  # damped: it says why
                assert r.status.faults

    tally.run(case, lambda: f"mode {mode.name} age {age} frame {data.hex()}")


def test_fuzz_lowstate_decode_and_safety(core):
    Tally("lowstate_safety").campaign(_lowstate_case, core)


# ---------------------------------------------------------------------- 2. policy metadata
@given(doc=st.data())
@FUZZ
def _metadata_case(base, tally, doc):
    rng = doc.draw(st.randoms(use_true_random=False))
    d = doc.draw(mutated(base)) if rng.random() < 0.9 else random_value(rng)
    text = None
    if rng.random() < 0.5:
        try:
            text = json.dumps(d)
        except (ValueError, RecursionError):
            text = "{"
        if rng.random() < 0.1:
            text = text[: rng.randint(0, len(text))]

    def case():
        try:
            meta = (
                PolicyMetadata.from_json(text) if text is not None else PolicyMetadata.from_dict(d)
            )
            check_policy_bounds(meta)
        except PolicyFileError as e:
            assert e.field is None or isinstance(e.field, str)

    tally.run(case, lambda: repr(d)[:400])


def test_fuzz_policy_metadata_parser():
    import policy_factory

    Tally("policy_metadata").campaign(_metadata_case, policy_factory.metadata().to_dict())


# ---------------------------------------------------------------------- 3. config loader
@given(data=st.data())
@FUZZ
def _config_case(base, tmp, tally, data):
    rng = data.draw(st.randoms(use_true_random=False))
    kind = rng.random()
    if kind < 0.7:
        try:
            text = yaml.safe_dump(data.draw(mutated(base)))
        except (yaml.YAMLError, RecursionError, ValueError):
            text = "x: 1\n"
        raw = text.encode()
    elif kind < 0.85:
        raw = data.draw(st.text(max_size=200)).encode()
    else:
        raw = data.draw(st.binary(max_size=120))
    if rng.random() < 0.2 and b"\n" in raw:  # a repeated key
        raw = raw + raw[: raw.find(b"\n") + 1]

    def case():
        tmp.write_bytes(raw)
        with contextlib.suppress(ConfigError):
            load_config_file(tmp)

    tally.run(case, lambda: repr(raw)[:400])


def test_fuzz_config_loader(tmp_path):
    from moe_loco_controller.core.config import load_config

    Tally("config").campaign(_config_case, to_dict(load_config()), tmp_path / "controller.yaml")
    with pytest.raises(ConfigError):  # and the strict parser really is what load_config uses
        from_dict(parse_yaml("device: cpu\ndevice: cpu\n", "x"))


# ------------------------------------------------------------------ 4. service + command handlers
@pytest.fixture(scope="module")
def node(policy_path):
    import rclpy

    from moe_loco_controller.core.config import load_config
    from moe_loco_controller.nodes.controller_node import ControllerNode

    rclpy.init()
    n = ControllerNode(load_config().replace(**{"link.source": "mirror"}), policy_path, None)
    yield n
    n.destroy_node()
    rclpy.try_shutdown()


weights = st.lists(st.one_of(f32_msg, st.floats(0.0, 3.0, width=32)), max_size=8)


@given(
    req_weights=weights,
    preset=st.one_of(st.just(""), st.sampled_from(["default", "dribble"]), st.text(max_size=8)),
    gait=st.integers(0, 255),
    cmd=st.tuples(
        f32_msg, f32_msg, f32_msg, st.integers(0, 255), st.integers(0, 255), st.booleans()
    ),
    mode=st.sampled_from(list(Mode)),
)
@FUZZ
def _handlers_case(node, tally, req_weights, preset, gait, cmd, mode):
    from moe_loco_controller.nodes.messages import robot_state_to_msg
    from moe_loco_msgs.msg import LocoCommand
    from moe_loco_msgs.srv import SetExpertScale, SetGait

    def case():
        before = node.policy.expert_scale
        res = node._on_set_scale(
            SetExpertScale.Request(weights=req_weights, preset=preset), SetExpertScale.Response()
        )
        assert isinstance(res.success, bool) and res.message
        if not res.success:
            np.testing.assert_array_equal(node.policy.expert_scale, before)
        assert np.all(np.isfinite(node.policy.expert_scale))
        gait_before = node.core.gait
        res = node._on_set_gait(SetGait.Request(gait=gait), SetGait.Response())
        assert res.success == (gait < len(node.core.metadata.gaits))
        if not res.success:
            assert node.core.gait == gait_before and res.message
        vx, vy, wz, g, request, estop = cmd
        node._on_command(
            LocoCommand(vx=vx, vy=vy, wz=wz, gait=g, request=request, estop=estop, deadman=True)
        )
        now = node.clock()
        force_mode(node.core, mode, now)
        from moe_loco_controller.core.robot_state import RobotState

        node._on_state(robot_state_to_msg(RobotState.nominal(now), node.get_clock().now().to_msg()))
        node.control_tick(now, 0.0)
        r = node.last_result
        assert node.tick_errors == 0, "the tick raised"
        assert not command_problems(r.command)
        assert np.all(np.isfinite(r.status.command))

    tally.run(case, lambda: repr((req_weights, preset, gait, cmd, mode)))


def test_fuzz_service_and_command_handlers(node):
    Tally("handlers").campaign(_handlers_case, node)


# ---------------------------------------------------------------------- 5. bag reader
@pytest.fixture(scope="module")
def small_bag(tmp_path_factory, policy_path):
    """The 3.2 s short run (stand, run, a gait and a scale change, e-stop) as a bag."""
    import run_factory

    from moe_loco_controller.core.config import load_config

    d = tmp_path_factory.mktemp("fuzz_bag")
    cfg = load_config().replace(**{"control.stand_duration_s": 0.5})
    run_factory.record_run(d / "bag", policy_path, cfg, run_factory.short_script())
    return d / "bag", cfg


@given(data=st.data())
@FUZZ
def _bag_case(original, tmp, tally, data):
    from moe_loco_controller.bag import BagError, read_bag

    raw = bytearray(original)
    for _ in range(data.draw(st.integers(0, 6))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    if data.draw(st.integers(0, 5)) == 0:  # a length field made huge
        pos = data.draw(st.integers(0, max(0, len(raw) - 8)))
        raw[pos : pos + 8] = struct.pack("<Q", data.draw(st.integers(0, 2**64 - 1)))

    def case():
        tmp.write_bytes(bytes(raw))
        with contextlib.suppress(BagError):
            read_bag(tmp)

    tally.run(case, lambda: f"{len(raw)} bytes")


def test_fuzz_bag_reader(small_bag, tmp_path):
    bag, _ = small_bag
    Tally("bag_reader").campaign(
        _bag_case, (bag / "bag.mcap").read_bytes(), tmp_path / "fuzzed.mcap"
    )


# ---------------------------------------------------------------------- 6. replay
@given(data=st.data())
@FUZZ
def _replay_case(run, policy_path, runtime, cfg, tally, data):
    import dataclasses

    from moe_loco_controller.nodes.replay import Faults, ReplayError, replay_core

    steps = list(run.steps)
    for _ in range(data.draw(st.integers(1, 4))):
        k = data.draw(st.integers(0, len(steps) - 1))
        what = data.draw(
            st.sampled_from(["mode", "gait", "expert_scale", "gate", "faults", "time"])
        )
        s = steps[k]
        if what == "mode":
            s = dataclasses.replace(s, mode=data.draw(st.integers(0, 255)))
        elif what == "gait":
            s = dataclasses.replace(s, gait=data.draw(st.integers(0, 255)))
        elif what == "expert_scale":
            s = dataclasses.replace(s, expert_scale=np.asarray(data.draw(weights), np.float32))
        elif what == "gate":
            s = dataclasses.replace(s, gate=np.asarray(data.draw(weights), np.float32))
        elif what == "faults":
            s = dataclasses.replace(
                s, link_faults=tuple(data.draw(st.lists(st.text(max_size=6), max_size=3)))
            )
        else:
            s = dataclasses.replace(s, control_time=data.draw(st.floats(allow_nan=True)))
        steps[k] = s
    fuzzed = dataclasses.replace(run, steps=steps)
    faults = Faults(
        drop=data.draw(st.integers(-2, 30)),
        delay_ms=data.draw(st.floats(-10.0, 500.0)),
        corrupt=data.draw(st.integers(-2, 5)),
        seed=data.draw(st.integers(0, 2**32)),
        at_step=data.draw(st.one_of(st.none(), st.integers(-5, 200))),
    )

    def case():
        try:
            report = replay_core(fuzzed, policy_path, cfg, faults, runtime=runtime)
        except ReplayError:
            return
        assert isinstance(report.ok, bool)

    tally.run(case, lambda: repr(faults))


def test_fuzz_replay(small_bag, policy_path):
    from moe_loco_controller.nodes.replay import load_run

    bag, cfg = small_bag
    import dataclasses

    run = load_run(bag)
    run = dataclasses.replace(run, steps=run.steps[:70])  # PASSIVE, STAND, RUN, a gait switch
    assert {s.mode for s in run.steps} == {0, 1, 2}
    Tally("replay").campaign(_replay_case, run, policy_path, PolicyRuntime(policy_path), cfg)
