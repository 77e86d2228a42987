"""Export of the stage-2 graph: torch parity through the runtime, metadata, joint order, CLI."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import numpy as np
import onnx
import pytest
import torch

from moe_loco_controller.core import go2
from moe_loco_controller.core.observation import ObservationBuilder
from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_controller.core.policy_metadata import METADATA_KEY
from moe_loco_controller.core.robot_state import RobotState
from moe_loco_training import export as ex
from moe_loco_training.control import ControlConfig
from moe_loco_training.models import ModelConfig, MoELocoActorCritic
from moe_loco_training.observations import ObservationConfig, build_command, build_proprio

SEED = 7


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = ex.random_policy(SEED)
    path = tmp_path_factory.mktemp("export") / "policy.onnx"
    prov = ex.TrainingProvenance(code_revision="abc123", seed=SEED)
    meta = ex.export_policy(model, path, provenance=prov)
    return model, path, meta


def torch_step(model, p, c, state, w):
    with torch.no_grad():
        out = model(
            torch.from_numpy(p)[None],
            torch.from_numpy(c)[None],
            state,
            expert_scale=torch.from_numpy(w),
        )
    return out


def test_parity_torch_vs_onnx_runtime(exported):
    """>= 200 recurrent steps, a reset midway, a non-default expert scale: |diff| <= 1e-5."""
    model, path, _ = exported
    rt = PolicyRuntime(path)
    w = np.array([1.0, 2.0, 0.0, 0.5, 0.0, 1.0], dtype=np.float32)
    rt.set_expert_scale(w)
    rng = np.random.default_rng(0)
    steps, reset_at = 260, 130
    state = model.initial_state(1)
    worst = {"actions": 0.0, "gate": 0.0, "estimate": 0.0}
    drift = 0.0
    for t in range(steps):
        if t == reset_at:
            rt.reset()
            state = model.initial_state(1)
        p = rng.normal(0.0, 0.5, 42).astype(np.float32)
        c = rng.normal(0.0, 0.5, 5).astype(np.float32)
        r = rt.step(p, c)
        out = torch_step(model, p, c, state, w)
        state = out.state
        for name, ref in (
            ("actions", out.action_mean),
            ("gate", out.gate),
            ("estimate", out.estimate),
        ):
            worst[name] = max(worst[name], float(np.abs(getattr(r, name) - ref[0].numpy()).max()))
        drift = max(drift, float(out.state.actor[0].abs().max()))
    print(f"parity over {steps} steps (reset at {reset_at}), max |diff|: {worst}")
    assert worst["actions"] <= 1e-5 and worst["gate"] <= 1e-5 and worst["estimate"] <= 1e-5
    assert drift > 0.05  # the recurrent state really carried something


def test_metadata_written_into_the_file(exported):
    _, path, meta = exported
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    data = json.loads(props[METADATA_KEY])
    assert data == meta.to_dict()
    assert data["contract_version"] == 1
    assert data["joint_names"] == list(go2.JOINT_NAMES)
    assert data["default_joint_pos"] == pytest.approx(list(go2.DEFAULT_STANDING_POSE))
    assert (data["action_scale"], data["action_clip"], data["kp"], data["kd"]) == (
        0.25,
        100.0,
        40.0,
        0.5,
    )
    assert data["control_dt"] == 0.02
    names = [t["name"] for t in data["observation"]["proprio"]]
    assert names == ["projected_gravity", "base_ang_vel", "joint_pos", "joint_vel", "last_action"]
    scales = {t["name"]: t["scale"] for t in data["observation"]["proprio"]}
    assert scales["base_ang_vel"] == 0.25 and scales["joint_vel"] == 0.05
    assert data["observation"]["command"][0]["scale"] == [2.0, 2.0, 0.25]
    assert data["gaits"] == ["quadrupedal", "bipedal"]
    assert set(data["command_ranges"]) == {"quadrupedal", "bipedal"}
    assert data["num_experts"] == 6
    assert data["estimate"]["slices"]["base_lin_vel"] == [8, 11]
    assert data["inputs"] == {
        "proprio": "proprio",
        "command": "command",
        "expert_scale": "expert_scale",
    }
    assert [r["input"] for r in data["recurrent"]] == ["est_h", "est_c", "actor_h", "actor_c"]
    t = data["training"]
    assert (t["code_revision"], t["stage"], t["iterations"], t["simulator"], t["seed"]) == (
        "abc123",
        "random-init",
        0,
        "none",
        SEED,
    )


def test_graph_macs_match_the_model(exported):
    model, path, _ = exported
    macs = ex.graph_macs(path)
    assert sum(macs.values()) == model.deploy_macs()
    assert macs["LSTM"] == 4 * 256 * (47 + 256) + 4 * 256 * (59 + 256)


def state_sequence(n: int, seed: int = 0) -> list[RobotState]:
    rng = np.random.default_rng(seed)
    states = []
    for _ in range(n):
        q = np.r_[1.0, 0.05 * rng.standard_normal(3)]
        states.append(
            RobotState(
                q=go2.DEFAULT_STANDING_POSE + 0.2 * rng.standard_normal(12),
                dq=rng.standard_normal(12),
                tau_est=np.zeros(12),
                quat_wxyz=q / np.linalg.norm(q),
                gyro=0.5 * rng.standard_normal(3),
                accel=np.array([0.0, 0.0, 9.81]),
            )
        )
    return states


def run_closed_loop(rt: PolicyRuntime, states: list[RobotState]) -> tuple[np.ndarray, np.ndarray]:
    """Observation builder + runtime + action map: SDK-order targets and raw actions per step."""
    b = ObservationBuilder(rt.metadata)
    last = np.zeros(12)
    targets, actions = [], []
    for i, s in enumerate(states):
        r = rt.step(b.proprio(s, last), b.command(0.5, 0.0, 0.2, i // 10 % 2))
        last = rt.action_map.clip(r.actions)
        targets.append(rt.action_map.pd_targets_sdk(r.actions))
        actions.append(r.actions)
    return np.array(targets), np.array(actions)


def test_urdf_ordered_export_maps_by_name(exported, tmp_path):
    """The same policy exported in URDF order drives the robot exactly like the SDK-order file."""
    model, sdk_path, _ = exported
    urdf = ex.in_joint_order(ex.Checkpoint(model), go2.URDF_JOINT_NAMES)
    urdf_path = tmp_path / "urdf.onnx"
    meta = ex.export_policy(urdf.model, urdf_path, urdf.control, urdf.observation, urdf.provenance)
    assert meta.joint_names == go2.URDF_JOINT_NAMES
    default = dict(zip(go2.JOINT_NAMES, go2.DEFAULT_STANDING_POSE, strict=True))
    assert list(meta.default_joint_pos) == [default[n] for n in go2.URDF_JOINT_NAMES]
    states = state_sequence(40)
    t_sdk, a_sdk = run_closed_loop(PolicyRuntime(sdk_path), states)
    t_urdf, a_urdf = run_closed_loop(PolicyRuntime(urdf_path), states)
    perm = [go2.JOINT_NAMES.index(n) for n in go2.URDF_JOINT_NAMES]
    np.testing.assert_allclose(a_urdf, a_sdk[:, perm], atol=1e-5)
    np.testing.assert_allclose(t_urdf, t_sdk, atol=1e-5)
    assert not np.allclose(a_urdf, a_sdk, atol=1e-3)  # raw actions really are in another order


def test_cli_random_seeded_in_urdf_order(tmp_path, capsys):
    out = tmp_path / "r.onnx"
    assert ex.main(["--random", "--seed", "3", "--joint-order", "urdf", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    rt = PolicyRuntime(out)
    assert rt.metadata.joint_names == go2.URDF_JOINT_NAMES
    assert rt.metadata.training["seed"] == 3 and rt.metadata.training["stage"] == "random-init"
    # the file is random_policy(3) (trained in SDK order) re-expressed in URDF order
    model = ex.random_policy(3)
    p = np.random.default_rng(1).normal(0, 0.5, 42).astype(np.float32)
    c = np.array([1.0, 0, 0, 1, 0], dtype=np.float32)
    perm = np.array([go2.JOINT_NAMES.index(n) for n in go2.URDF_JOINT_NAMES])
    cols = np.arange(42)
    for start in (6, 18, 30):
        cols[start : start + 12] = start + perm
    r = rt.step(p[cols], c)
    ref = torch_step(model, p, c, model.initial_state(1), np.ones(6, np.float32))
    np.testing.assert_allclose(r.actions, ref.action_mean[0].numpy()[perm], atol=1e-5)
    other = torch_step(ex.random_policy(4), p, c, model.initial_state(1), np.ones(6, np.float32))
    assert not np.allclose(r.actions, other.action_mean[0].numpy()[perm], atol=1e-3)


def test_cli_exports_a_checkpoint(tmp_path):
    torch.manual_seed(5)
    model = MoELocoActorCritic(ModelConfig(num_experts=4)).eval()
    prov = ex.TrainingProvenance("deadbeef", "stage2", 10_000, "mujoco", 5, {"run": "t1"})
    ck = tmp_path / "ck.pt"
    ex.save_checkpoint(ck, ex.Checkpoint(model, provenance=prov))
    loaded = ex.load_checkpoint(ck)
    assert loaded.provenance == prov and loaded.model.config == model.config
    out = tmp_path / "ck.onnx"
    assert ex.main(["--checkpoint", str(ck), "-o", str(out), "--expert-labels", "a,b,c,d"]) == 0
    rt = PolicyRuntime(out)
    t = rt.metadata.training
    assert (
        t["code_revision"],
        t["stage"],
        t["iterations"],
        t["simulator"],
        t["seed"],
        t["run"],
    ) == ("deadbeef", "stage2", 10_000, "mujoco", 5, "t1")
    assert rt.num_experts == 4 and rt.metadata.expert_labels == ("a", "b", "c", "d")
    p, c = np.full(42, 0.1, np.float32), np.array([0.5, 0, 0, 0, 1], np.float32)
    ref = torch_step(model, p, c, model.initial_state(1), np.ones(4, np.float32))
    np.testing.assert_allclose(rt.step(p, c).actions, ref.action_mean[0].numpy(), atol=1e-5)


def test_cli_errors(tmp_path, capsys):
    out = str(tmp_path / "x.onnx")
    assert ex.main(["--checkpoint", str(tmp_path / "none.pt"), "-o", out]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    bogus = tmp_path / "bogus.pt"
    torch.save({"weights": 1}, bogus)
    assert ex.main(["--checkpoint", str(bogus), "-o", out]) == 1
    assert "not a MoE-Loco checkpoint" in capsys.readouterr().err
    assert ex.main(["--checkpoint", str(bogus), "--seed", "1", "-o", out]) == 2
    with pytest.raises(SystemExit):
        ex.main(["-o", out])  # neither --random nor --checkpoint
    assert not (tmp_path / "x.onnx").exists()


def test_console_script_is_registered():
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("moe-loco-export") == "moe_loco_training.export:main"


def test_baseline_exports_as_a_single_expert(tmp_path):
    torch.manual_seed(2)
    model = MoELocoActorCritic(ModelConfig(head="mlp")).eval()
    path = tmp_path / "mlp.onnx"
    meta = ex.export_policy(model, path, provenance=ex.TrainingProvenance(seed=2))
    assert meta.num_experts == 1 and meta.training["model"] == "mlp"
    rt = PolicyRuntime(path)
    p, c = np.full(42, 0.1, np.float32), np.array([0.5, 0, 0, 1, 0], np.float32)
    r = rt.step(p, c)
    assert r.gate.tolist() == [1.0]
    ref = torch_step(model, p, c, model.initial_state(1), np.ones(1, np.float32))
    np.testing.assert_allclose(r.actions, ref.action_mean[0].numpy(), atol=1e-5)


def test_export_refuses_a_model_that_does_not_fit_the_setup(tmp_path):
    model = MoELocoActorCritic(ModelConfig(proprio_dim=45))
    with pytest.raises(ValueError, match="proprio_dim is 45"):
        ex.export_policy(model, tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="expert_labels"):
        ex.build_metadata(
            ex.random_policy(0),
            ControlConfig(),
            ObservationConfig(),
            ex.TrainingProvenance(),
            expert_labels=["only", "three", "labels"],
        )
    assert not (tmp_path / "x.onnx").exists()


def test_training_and_runtime_build_the_same_observation(exported):
    """The torch builder (training) and the numpy builder (robot) read one spec, agree."""
    _, _, meta = exported
    b = ObservationBuilder(meta)
    for k, s in enumerate(state_sequence(5, seed=3)):
        last = np.linspace(-2, 2, 12) * (k + 1)
        ref = b.proprio(s, last)
        got = build_proprio(
            meta.observation,
            quat_wxyz=torch.tensor(s.quat_wxyz),
            base_ang_vel=torch.tensor(s.gyro),
            joint_pos_rel=torch.tensor(s.q) - torch.tensor(go2.DEFAULT_STANDING_POSE),
            joint_vel=torch.tensor(s.dq),
            last_action=torch.tensor(last),
        )
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6, atol=1e-6)
    cmd = build_command(meta.observation, torch.tensor([[0.5, -0.2, 0.8]]), torch.tensor([1]))
    np.testing.assert_allclose(cmd[0].numpy(), b.command(0.5, -0.2, 0.8, "bipedal"), rtol=1e-6)


def test_random_policy_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = ex.random_policy(1), ex.random_policy(1), ex.random_policy(2)
    assert torch.rand(1) == before
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
