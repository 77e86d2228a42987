"""The policy runtime: loading and refusing files, recurrent state, eq. (5), expert scale rules.

Policies are seeded random-initialised exports made here by the training package's exporter
(none is committed); bad files are made by editing a good one with ``onnx``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
ex = pytest.importorskip("moe_loco_training.export")

from moe_loco_controller.core import go2  # noqa: E402
from moe_loco_controller.core.expert_presets import (  # noqa: E402
    ExpertPresetError,
    load_expert_presets,
)
from moe_loco_controller.core.policy import PolicyRuntime, select_providers  # noqa: E402
from moe_loco_controller.core.policy_metadata import (  # noqa: E402
    METADATA_KEY,
    PolicyFileError,
)

DRIBBLE = np.array([1.0, 2.0, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)


@pytest.fixture(scope="module")
def good_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("policy") / "good.onnx"
    ex.export_policy(ex.random_policy(11), path, provenance=ex.TrainingProvenance(seed=11))
    return path


@pytest.fixture(scope="module")
def good_proto(good_path):
    return onnx.load(str(good_path))


@pytest.fixture
def rt(good_path) -> PolicyRuntime:
    return PolicyRuntime(good_path)


def inputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.normal(0, 0.5, (n, 42)).astype(np.float32),
        rng.normal(0, 0.5, (n, 5)).astype(np.float32),
    )


def metadata_of(proto) -> dict:
    return json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])


def rewrite(proto, path, meta: Callable[[dict], None] | None = None, raw: str | None = None):
    """A copy of ``proto`` with its metadata edited by ``meta`` (or replaced by ``raw``)."""
    p = onnx.ModelProto()
    p.CopyFrom(proto)
    data = metadata_of(p)
    if meta is not None:
        meta(data)
    del p.metadata_props[:]
    if raw is not None or meta is not None:
        onnx.helper.set_model_props(p, {METADATA_KEY: raw if raw is not None else json.dumps(data)})
    onnx.save_model(p, str(path))
    return path


def refused(path) -> PolicyFileError:
    with pytest.raises(PolicyFileError) as e:
        PolicyRuntime(path)
    assert str(path) in str(e.value)  # every refusal names the file
    return e.value


# ---------------------------------------------------------------- loading a good file
def test_loads_a_good_policy(rt):
    assert rt.providers == ["CPUExecutionProvider"]
    opts = rt.session.get_session_options()
    assert (opts.intra_op_num_threads, opts.inter_op_num_threads) == (1, 1)
    assert rt.num_experts == 6 and rt.metadata.joint_names == go2.JOINT_NAMES
    assert rt.expert_scale.tolist() == [1.0] * 6
    r = rt.step(*[a[0] for a in inputs(1)])
    assert r.actions.shape == (12,) and r.gate.shape == (6,) and r.estimate.shape == (12,)
    assert r.finite() and rt.base_velocity(r).shape == (3,)
    assert r.gate.sum() == pytest.approx(1.0, abs=1e-6)


def test_asking_for_an_absent_accelerator_falls_back_to_cpu(good_path, caplog):
    with caplog.at_level(logging.WARNING):
        rt = PolicyRuntime(good_path, device="cuda")
    assert rt.providers == ["CPUExecutionProvider"]
    assert "CUDAExecutionProvider" in caplog.text
    assert select_providers("auto")[-1] == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="device must be one of"):
        PolicyRuntime(good_path, device="tpu")


# ---------------------------------------------------------------- refusing bad files
def test_missing_file(tmp_path):
    e = refused(tmp_path / "nope.onnx")
    assert "not found" in str(e) and "nope.onnx" in str(e)


def test_directory_is_not_a_policy(tmp_path):
    assert "not a file" in str(refused(tmp_path))


def test_not_onnx(tmp_path):
    p = tmp_path / "policy.onnx"
    p.write_text("this is not a neural network\n")
    assert "not a loadable ONNX model" in str(refused(p))


def test_truncated_onnx(tmp_path, good_path):
    p = tmp_path / "cut.onnx"
    p.write_bytes(good_path.read_bytes()[:5000])
    assert "not a loadable ONNX model" in str(refused(p))


def test_onnx_without_metadata(tmp_path, good_proto):
    p = onnx.ModelProto()
    p.CopyFrom(good_proto)
    del p.metadata_props[:]
    onnx.save_model(p, str(tmp_path / "bare.onnx"))
    e = refused(tmp_path / "bare.onnx")
    assert e.field == METADATA_KEY and "no 'moe_loco' entry" in str(e)


def test_metadata_not_json(tmp_path, good_proto):
    e = refused(rewrite(good_proto, tmp_path / "m.onnx", raw="{contract_version: 1"))
    assert e.field == METADATA_KEY and "not valid JSON" in str(e)


REQUIRED = [
    "contract_version",
    "joint_names",
    "default_joint_pos",
    "action_scale",
    "action_clip",
    "kp",
    "kd",
    "control_dt",
    "observation",
    "gaits",
    "command_ranges",
    "num_experts",
    "inputs",
    "outputs",
    "recurrent",
    "estimate",
    "training",
]


@pytest.mark.parametrize("field", REQUIRED)
def test_missing_field(tmp_path, good_proto, field):
    e = refused(rewrite(good_proto, tmp_path / "m.onnx", lambda d: d.pop(field)))
    assert e.field == field and "missing" in str(e)


@pytest.mark.parametrize(
    "path",
    [
        "observation.proprio",
        "observation.command",
        "inputs.proprio",
        "outputs.gate",
        "estimate.slices",
        "training.code_revision",
        "training.seed",
        "command_ranges.bipedal",
        "command_ranges.quadrupedal.wz",
    ],
)
def test_missing_nested_field(tmp_path, good_proto, path):
    def drop(d):
        *parents, leaf = path.split(".")
        for k in parents:
            d = d[k]
        d.pop(leaf)

    e = refused(rewrite(good_proto, tmp_path / "m.onnx", drop))
    assert e.field == path and "missing" in str(e)


def _set(path: str, value):
    def edit(d):
        *parents, leaf = path.split(".")
        for k in parents:
            d = d[int(k)] if k.isdigit() else d[k]
        d[int(leaf) if leaf.isdigit() else leaf] = value

    return edit


MALFORMED = [
    # (edit, field named in the error, text in the error)
    (_set("joint_names", "FR_hip_joint"), "joint_names", "non-empty list"),
    (_set("joint_names", [*go2.JOINT_NAMES[:11], "FR_hip_joint"]), "joint_names", "duplicates"),
    (
        _set("joint_names", [*go2.JOINT_NAMES[:11], "tail_joint"]),
        "joint_names",
        "unknown ['tail_joint']",
    ),
    (_set("default_joint_pos", [0.0] * 11), "default_joint_pos", "must have 12 entries"),
    (_set("default_joint_pos", 0.0), "default_joint_pos", "one position per joint"),
    (_set("action_scale", "0.25"), "action_scale", "finite number"),
    (_set("action_clip", -1.0), "action_clip", "must be > 0"),
    (_set("kp", [40.0] * 12 + [1.0]), "kp", "must have 12 entries"),
    (_set("kd", -0.5), "kd", "must be >= 0"),
    (_set("control_dt", 0), "control_dt", "must be > 0"),
    (
        _set("observation.proprio.1.name", "base_lin_vel"),
        "observation.proprio[1].name",
        "unknown term",
    ),
    (_set("observation.proprio.2.dim", 13), "observation.proprio[2].dim", "has 12 values here"),
    (
        _set("observation.proprio.3.scale", [0.05] * 11),
        "observation.proprio[3].scale",
        "12 entries",
    ),
    (_set("observation.proprio.0.scale", None), "observation.proprio[0].scale", "finite number"),
    (_set("observation.clip", 0.0), "observation.clip", "must be > 0"),
    (_set("observation.command.1.dim", 3), "observation.command[1].dim", "has 2 values here"),
    (_set("gaits", ["quadrupedal", "quadrupedal"]), "gaits", "duplicates"),
    (
        _set("command_ranges.quadrupedal.vx", [1.0, -1.0]),
        "command_ranges.quadrupedal.vx",
        "min 1.0 > max",
    ),
    (_set("command_ranges.trot", {}), "command_ranges", "unknown field(s) ['trot']"),
    (_set("num_experts", 0), "num_experts", "must be >= 1"),
    (_set("num_experts", 6.0), "num_experts", "must be an integer"),
    (_set("expert_labels", ["a", "b"]), "expert_labels", "must have num_experts = 6"),
    (_set("recurrent.0.shape", []), "recurrent[0].shape", "non-empty list"),
    (_set("recurrent.1.input", "est_h"), "inputs", "used twice: ['est_h']"),
    (_set("estimate.slices.base_lin_vel", [8, 10]), "estimate.slices.base_lin_vel", "span 3"),
    (_set("estimate.slices.friction", [11, 13]), "estimate.slices.friction", "not a slice"),
    (_set("training.iterations", -1), "training.iterations", "must be >= 0"),
    (_set("training.stage", ""), "training.stage", "non-empty string"),
    (_set("inputs.proprio", 3), "inputs.proprio", "non-empty string"),
    (_set("inputs.history", "h"), "inputs", "unknown field(s) ['history']"),
    (_set("action_scale_hips", 0.125), "metadata", "unknown field(s) ['action_scale_hips']"),
]


@pytest.mark.parametrize(
    ("edit", "field", "text"), MALFORMED, ids=[f"{m[1]}:{m[2]}" for m in MALFORMED]
)
def test_malformed_field(tmp_path, good_proto, edit, field, text):
    e = refused(rewrite(good_proto, tmp_path / "m.onnx", edit))
    assert e.field == field
    assert text in str(e)


def test_nan_in_metadata_is_malformed(tmp_path, good_proto):
    e = refused(rewrite(good_proto, tmp_path / "m.onnx", _set("kp", float("nan"))))
    assert e.field == "kp" and "finite" in str(e)


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_unknown_contract_version(tmp_path, good_proto, version):
    e = refused(rewrite(good_proto, tmp_path / "m.onnx", _set("contract_version", version)))
    assert e.field == "contract_version"
    if isinstance(version, int):
        assert f"unknown contract version {version}" in str(e) and "understands 1" in str(e)
    else:
        assert "must be an integer" in str(e)


def test_newer_version_is_refused_for_its_version_first(tmp_path, good_proto):
    def v2(d):
        d["contract_version"] = 2
        d.pop("joint_names")
        d["joints"] = []

    assert refused(rewrite(good_proto, tmp_path / "m.onnx", v2)).field == "contract_version"


# ---------------------------------------------------------------- graph vs metadata
def _drop_term(name):
    def edit(d):
        d["observation"]["proprio"] = [t for t in d["observation"]["proprio"] if t["name"] != name]

    return edit


IO_MISMATCH = [
    (
        _drop_term("last_action"),
        "inputs.proprio",
        "[1, 42] in the graph, the metadata implies [1, 30]",
    ),
    (_set("num_experts", 4), "inputs.expert_scale", "[6] in the graph, the metadata implies [4]"),
    (_set("recurrent.2.shape", [1, 1, 128]), "inputs.actor_h", "[1, 1, 256] in the graph"),
    (_set("recurrent.0.shape", [1, 256]), "inputs.est_h", "the metadata implies [1, 256]"),
    (
        _set("estimate.dim", 16),
        "outputs.estimate",
        "[1, 12] in the graph, the metadata implies [1, 16]",
    ),
    (_set("inputs.proprio", "obs"), "inputs", "no input(s) ['obs']"),
    (_set("outputs.actions", "action"), "outputs", "no output(s) ['action']"),
    (_set("recurrent.3.output", "c_next"), "outputs", "no output(s) ['c_next']"),
    (
        lambda d: d["recurrent"].pop(),
        "inputs",
        "input(s) ['actor_c'] that the metadata does not name",
    ),
]


@pytest.mark.parametrize(("edit", "field", "text"), IO_MISMATCH, ids=[m[1] for m in IO_MISMATCH])
def test_graph_disagrees_with_metadata(tmp_path, good_proto, edit, field, text):
    e = refused(rewrite(good_proto, tmp_path / "m.onnx", edit))
    assert e.field == field
    assert text in str(e)


def test_input_of_wrong_type(tmp_path, good_proto):
    p = onnx.ModelProto()
    p.CopyFrom(good_proto)
    g = p.graph
    for node in g.node:
        node.input[:] = ["scale_f32" if i == "expert_scale" else i for i in node.input]
    g.node.insert(0, onnx.helper.make_node("Cast", ["expert_scale"], ["scale_f32"], to=1))
    next(
        i for i in g.input if i.name == "expert_scale"
    ).type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
    onnx.save_model(p, str(tmp_path / "f64.onnx"))
    e = refused(tmp_path / "f64.onnx")
    assert e.field == "inputs.expert_scale" and "tensor(double)" in str(e)


# ---------------------------------------------------------------- recurrent state
def test_state_persists_and_reset_restarts(rt):
    p, c = inputs(30)
    first = [rt.step(p[i], c[i]) for i in range(30)]
    again = rt.step(p[0], c[0])
    assert not np.allclose(again.actions, first[0].actions, atol=1e-4)  # state carried over
    rt.reset()
    after_reset = [rt.step(p[i], c[i]) for i in range(3)]
    for a, b in zip(after_reset, first, strict=False):
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.gate, b.gate)
        np.testing.assert_array_equal(a.estimate, b.estimate)


def test_state_snapshot_and_restore(rt):
    p, c = inputs(5)
    for i in range(3):
        rt.step(p[i], c[i])
    snap = rt.get_state()
    a = rt.step(p[3], c[3])
    rt.set_state(snap)
    np.testing.assert_array_equal(rt.step(p[3], c[3]).actions, a.actions)
    with pytest.raises(ValueError, match="exactly"):
        rt.set_state({"est_h": snap["est_h"]})


def test_step_accepts_batch_shaped_rows_and_refuses_wrong_sizes(rt):
    p, c = inputs(1)
    a = rt.step(p[0], c[0]).actions
    rt.reset()
    np.testing.assert_array_equal(rt.step(p[:1], c[:1]).actions, a)
    with pytest.raises(ValueError, match="proprio must have 42 values and command 5"):
        rt.step(np.zeros(41), c[0])


# ---------------------------------------------------------------- eq. (5)
def test_eq5_scaling_one_expert_by_2_and_masking_others(rt):
    """g_i = w_i * softmax(.)_i exactly, and the action is the mixture with that gate."""
    p, c = inputs(20, seed=4)
    for i in range(10):
        rt.step(p[i], c[i])
    snap = rt.get_state()

    def step_with(w):
        rt.set_state(snap)
        rt.set_expert_scale(w)
        return rt.step(p[10], c[10])

    ones = step_with(np.ones(6))
    scaled = step_with(DRIBBLE)
    np.testing.assert_array_equal(scaled.gate, DRIBBLE * ones.gate)  # bit for bit
    assert scaled.gate[2:].tolist() == [0.0] * 4
    assert scaled.gate.sum() != pytest.approx(1.0)  # no renormalisation
    # each expert alone (one-hot w) gives g_i f_i(h): the mixture is linear in w
    alone = np.array([step_with(np.eye(6)[i]).actions for i in range(6)])
    np.testing.assert_allclose(scaled.actions, DRIBBLE @ alone, atol=1e-6)
    np.testing.assert_allclose(ones.actions, alone.sum(0), atol=1e-6)
    np.testing.assert_array_equal(scaled.estimate, ones.estimate)  # the estimator is not gated


@pytest.mark.parametrize(
    ("weights", "reason"),
    [
        ([1.0] * 5, "one weight per expert (6)"),
        ([1.0] * 7, "one weight per expert (6)"),
        ([[1.0] * 6], "one weight per expert (6)"),
        ([1, 1, float("nan"), 1, 1, 1], "not finite at expert(s) [2]"),
        ([1, 1, 1, float("inf"), 1, 1], "not finite at expert(s) [3]"),
        ([1, -0.5, 1, 1, 1, 1], "negative at expert(s) [1]"),
        ([0.0] * 6, "must not be all zero"),
        (["a", 1, 1, 1, 1, 1], "list of numbers"),
    ],
)
def test_refused_scale_leaves_the_previous_one(rt, weights, reason):
    rt.set_expert_scale(DRIBBLE)
    p, c = inputs(1)
    snap = rt.get_state()
    before = rt.step(p[0], c[0])
    with pytest.raises(ValueError) as e:
        rt.set_expert_scale(weights)
    assert reason in str(e.value)
    np.testing.assert_array_equal(rt.expert_scale, DRIBBLE)
    rt.set_state(snap)
    np.testing.assert_array_equal(rt.step(p[0], c[0]).gate, before.gate)


def test_presets_from_yaml(rt, tmp_path):
    assert rt.set_expert_preset("dribble").tolist() == DRIBBLE.tolist()
    assert rt.set_expert_preset("default").tolist() == [1.0] * 6
    rt.set_expert_scale(DRIBBLE)
    with pytest.raises(ValueError, match="unknown expert preset 'moonwalk'"):
        rt.set_expert_preset("moonwalk")
    np.testing.assert_array_equal(rt.expert_scale, DRIBBLE)

    yaml_file = tmp_path / "presets.yaml"
    yaml_file.write_text(
        "version: 1\npresets:\n"
        "  big: {fill: 0.0, experts: {7: 1.0}}\n"
        "  five: {weights: [1, 1, 1, 1, 1]}\n"
        "  six: {weights: [0, 0, 3, 0, 0, 0]}\n"
    )
    custom = PolicyRuntime(rt.path, presets_path=yaml_file)
    custom.set_expert_scale(DRIBBLE)
    with pytest.raises(ValueError, match=r"names expert\(s\) \[7\], the policy has only 6"):
        custom.set_expert_preset("big")
    with pytest.raises(ValueError, match="has 5 weights, the policy has 6 experts"):
        custom.set_expert_preset("five")
    np.testing.assert_array_equal(custom.expert_scale, DRIBBLE)
    assert custom.set_expert_preset("six").tolist() == [0, 0, 3, 0, 0, 0]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("version: 1\npresets: {a: {fill: 1.0}\n", "not valid YAML"),
        ("version: 2\npresets: {a: {fill: 1.0}}\n", "version must be 1"),
        ("version: 1\npresets: {}\n", "non-empty mapping"),
        ("version: 1\npresets: {a: {fill: 1.0, colour: red}}\n", "unknown key(s) ['colour']"),
        ("version: 1\npresets: {a: {weights: [1, -1]}}\n", "negative"),
        ("version: 1\npresets: {a: {fill: 0.0}}\n", "all zero"),
        ("version: 1\npresets: {a: {fill: 1.0, experts: {x: 1}}}\n", "expert index"),
        ("version: 1\npresets: {a: {weights: [1], fill: 1}}\n", "either 'weights'"),
        ("version: 1\npresets: {a: {description: nothing}}\n", "needs 'weights' or 'fill'"),
        ("version: 1\npresets: {a: {weights: [1, .nan]}}\n", "not finite"),
    ],
)
def test_bad_presets_file(tmp_path, text, reason):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(ExpertPresetError) as e:
        load_expert_presets(f)
    assert reason in str(e.value)
    assert str(f) in str(e.value)


def test_missing_presets_file(tmp_path):
    with pytest.raises(ExpertPresetError, match="cannot read expert presets"):
        load_expert_presets(tmp_path / "none.yaml")


def test_shipped_presets_document_that_indices_are_policy_specific():
    presets = load_expert_presets()
    assert presets["default"].resolve(6).tolist() == [1.0] * 6
    assert presets["default"].resolve(3).tolist() == [1.0] * 3
    d = presets["dribble"].resolve(6)
    assert sorted(d.tolist()) == [0, 0, 0, 0, 1, 2]  # two experts, one doubled, others masked
    assert "PLACEHOLDER" in presets["dribble"].description


# ---------------------------------------------------------------- actions -> joint targets
def test_pd_targets_in_sdk_order_by_name(good_path, tmp_path):
    urdf = ex.in_joint_order(ex.Checkpoint(ex.random_policy(11)), go2.URDF_JOINT_NAMES)
    urdf_meta = ex.build_metadata(urdf.model, urdf.control, urdf.observation, urdf.provenance)
    rt = PolicyRuntime(good_path)
    a = np.linspace(-1, 1, 12)
    np.testing.assert_allclose(
        rt.action_map.pd_targets_sdk(a), go2.DEFAULT_STANDING_POSE + 0.25 * a, atol=1e-12
    )
    np.testing.assert_allclose(rt.action_map.kp_sdk, 40.0)
    # a URDF-ordered action vector lands on the joints it names
    from moe_loco_controller.core.policy import ActionMap

    amap = ActionMap.of(urdf_meta)
    t = amap.pd_targets_sdk(a)
    for k, name in enumerate(go2.URDF_JOINT_NAMES):
        i = go2.JOINT_NAMES.index(name)
        assert t[i] == pytest.approx(go2.DEFAULT_STANDING_POSE[i] + 0.25 * a[k])
    np.testing.assert_allclose(amap.default_pose_sdk, go2.DEFAULT_STANDING_POSE)
    big = amap.pd_targets_sdk(np.full(12, 1e6))
    np.testing.assert_allclose(big, go2.DEFAULT_STANDING_POSE + 0.25 * 100.0)  # action_clip


def test_a_nan_emitting_policy_is_reported_not_hidden(tmp_path):
    model = ex.random_policy(12)
    with torch.no_grad():
        model.actor_heads.biases[-1][0, 0, 3] = float("nan")
    path = tmp_path / "nan.onnx"
    ex.export_policy(model, path, provenance=ex.TrainingProvenance(seed=12))
    r = PolicyRuntime(path).step(*[a[0] for a in inputs(1)])
    assert not r.finite()
    assert np.isnan(r.actions[3]) and np.isfinite(np.delete(r.actions, 3)).all()


@pytest.mark.parametrize(
    ("weights", "reason"),
    [
        ([1e39] * 6, "finite as float32"),  # finite in float64, inf once cast
        ([1e-46] * 6, "all zero as float32"),  # positive in float64, zeros once cast
        ([10**400] * 6, "list of numbers"),
    ],
)
def test_expert_scale_is_judged_in_float32_the_type_the_policy_gets(make_policy, weights, reason):
    rt = PolicyRuntime(make_policy())
    rt.set_expert_scale([0.0, 2.0, 1.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=reason):
        rt.set_expert_scale(weights)
    assert list(rt.expert_scale) == [0.0, 2.0, 1.0, 0.0, 0.0, 0.0]  # unchanged


def test_a_presets_file_that_repeats_a_name_is_refused(tmp_path):
    from moe_loco_controller.core.expert_presets import ExpertPresetError, load_expert_presets

    p = tmp_path / "presets.yaml"
    p.write_text("version: 1\npresets:\n  a: {fill: 1.0}\n  a: {fill: 2.0}\n")
    with pytest.raises(ExpertPresetError, match="duplicate key 'a'"):
        load_expert_presets(p)
