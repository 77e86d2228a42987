"""The multitask Go2 environment: N robots in vectorised MuJoCo (C, or Warp), torch tensors at the
boundary.

The environment contract (what a second backend, e.g. IsaacGym, implements the same way)
-------------------------------------------------------------------------------------------
``env = MultitaskEnv(config)``; ``env.num_envs`` robots, control period ``env.dt`` (0.02 s:
50 Hz, 4 physics substeps of 0.005 s), actions (N, 12) in the policy's joint order (SDK order),
float32 torch tensors on ``env.device`` everywhere (the CPU for the C backend).

``reset() -> EnvStep`` resets every robot; ``step(actions) -> EnvStep`` applies one control
step. An :class:`EnvStep` holds:

- ``proprio`` p_t (N, 42): projected gravity, base angular velocity, joint positions (minus the
  default pose), joint velocities, last action; scaled and clipped as
  :class:`~moe_loco_training.observations.ObservationConfig` says, i.e. exactly what the
  controller core computes on the robot (``moe_loco_controller.core.observation``), plus
  observation noise;
- ``privileged_explicit`` e_t (N, 4): base linear velocity in the base frame [m/s], friction;
- ``privileged_implicit`` i_t (N, 39): net contact force on each of the 13 links
  (``constants.LINK_BODIES``: base, hips, thighs, calves with their feet), world frame, [N] times
  ``implicit_scale``;
- ``command`` c_t (N, 5): (vx, vy, wz) scaled as the observation spec says, gait one-hot
  (``[1, 0]`` quadrupedal, ``[0, 1]`` bipedal);
- ``reward`` (N,), ``done`` (N,) bool (terminated or timed out), ``time_out`` (N,) bool (done by
  the episode's length or by leaving the tile: bootstrap these);
- ``infos``: ``reward_terms`` (``"<gait>/<term>"`` -> (N,) weighted contributions),
  ``terminated`` (N,), ``task`` (N,) task index (``env.task_names``), ``level`` (N,),
  ``gait`` (N,), ``curriculum`` (task -> mean level), ``episode`` (stats of the robots reset this
  step: ``count``, ``mean_return``, ``mean_length_s``).

``state_dict()`` / ``load_state_dict(state)``: everything that evolves (robots, timers,
commands, curriculum levels, randomised parameters, the random generator), for a bit-exact
resume of training; a state from another configuration is refused before anything changes.

A robot that is done is reset inside ``step``; the observation returned for it is its first one
of the new episode (the rsl_rl convention). Everything random comes from one
``numpy.random.Generator`` seeded by ``config.seed`` (the Warp backend: per-step draws from a
``torch.Generator`` on its device seeded by it too, the C models' randomisation from the numpy
one): same seed, same actions -> bit-identical tensors.

This backend
------------
All tiles (``env.tiles``) live in one MuJoCo model; each robot has its own copy of it (its
domain-randomised friction, masses and motor strengths) and its own state row. One control step
is one ``mujoco.rollout`` call over all robots, ``substeps`` physics steps each, in native
threads; the PD law runs in the engine at every substep (PD-servo actuators, torque-limited),
with the joint targets as controls (so action latency is a per-substep control schedule). The
targets are the controller core's: ``default + action_scale * clip(action)``, clamped to each
joint's range plus its margin (``moe_loco_controller.core.command_guard.clamp_targets``).

The two backends, one task code
-------------------------------
``env.backend: mujoco`` keeps every per-robot array in numpy on the host; ``env.backend: warp``
steps the same model on MuJoCo Warp (:mod:`~moe_loco_training.env.warp_physics`) and keeps every
per-robot array as a torch tensor on the Warp device (``env.warp_device``). The observation,
reward, termination, command and curriculum code below and in ``rewards``, ``terminations`` and
``curriculum`` is written once against the array API (:mod:`~moe_loco_training.env.arrays`) and
runs on either kind: on a GPU, states, sensors, observations, rewards and dones never leave it.
What does cross to the host on the Warp backend: one value per task each step (the curriculum
means in ``infos``), the reset robots' indices and their randomised model rows at a reset (each
robot's C model copy is where its randomisation is drawn and applied, for both backends).
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field

import mujoco
import numpy as np
import torch
from mujoco import rollout

from moe_loco_controller.core import go2
from moe_loco_controller.core.command_guard import clamp_targets
from moe_loco_controller.core.policy_metadata import ObservationSpec, ObservationTerm
from moe_loco_sim.go2_model import Go2Indices
from moe_loco_sim.scene import SPAWN_CLEARANCE, pose_height
from moe_loco_training.control import ControlConfig
from moe_loco_training.env import rewards as rw
from moe_loco_training.env.arrays import (
    Array,
    DeviceRandom,
    HostRandom,
    clone,
    count,
    device_of,
    host,
    indices,
    is_torch,
    like_input,
    namespace,
    take,
    to_torch,
)
from moe_loco_training.env.config import EnvConfig, load_env_config
from moe_loco_training.env.constants import (
    BIPEDAL,
    CALF_LINKS,
    GAIT_NAMES,
    IMPLICIT_DIM,
    QUADRUPEDAL,
)
from moe_loco_training.env.curriculum import update_levels
from moe_loco_training.env.randomization import MODEL_FIELDS, Randomizer
from moe_loco_training.env.terminations import out_of_tile, terminated, timed_out
from moe_loco_training.env.tiles import (
    TileGrid,
    all_plane,
    build_env_model,
    contact_sensor_addresses,
)
from moe_loco_training.observations import ObservationConfig, build_command, build_proprio

SPAWN_JOINT_NOISE = 0.05
"""Uniform +-noise on the default pose at spawn [rad]."""
SPAWN_Y_NOISE = 0.3
"""Uniform +-lateral spawn offset [m]."""
OBSTACLE_YAW_NOISE = 0.2
"""Uniform +-yaw at spawn on obstacle tiles [rad] (plane tiles: any yaw)."""
UPRIGHT_POSE = np.array([-0.1, 0.8, -1.5, 0.1, 0.8, -1.5, -0.1, 0.8 + np.pi / 2, -1.5,
                         0.1, 0.8 + np.pi / 2, -1.5])  # fmt: skip
"""On the rear legs (SDK order): the body pitched nose-up by 90 degrees and the rear thighs
rotated back by as much, so that the rear legs stand as in the quadrupedal stance; front legs at
the default pose (they point backwards, clear of the ground)."""


def _quat_mul_batch(a: Array, b: Array) -> Array:
    """Hamilton products a * b of (k, 4) quaternions, row by row (w, x, y, z)."""
    xp = namespace(a, b)
    w1, x1, y1, z1 = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    w2, x2, y2, z2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    return xp.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=1,
    )


@dataclass
class EnvStep:
    """One step's tensors (see the module docstring for the contract)."""

    proprio: torch.Tensor
    privileged_explicit: torch.Tensor
    privileged_implicit: torch.Tensor
    command: torch.Tensor
    reward: torch.Tensor
    done: torch.Tensor
    time_out: torch.Tensor
    infos: dict = field(default_factory=dict)


def quat_to_matrix(q: Array) -> Array:
    """(N, 4) unit quaternions w, x, y, z -> (N, 3, 3) rotation matrices (body -> world)."""
    xp = namespace(q)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    rows = [
        1 - 2 * (y * y + z * z),
        2 * (x * y - w * z),
        2 * (x * z + w * y),
        2 * (x * y + w * z),
        1 - 2 * (x * x + z * z),
        2 * (y * z - w * x),
        2 * (x * z - w * y),
        2 * (y * z + w * x),
        1 - 2 * (x * x + y * y),
    ]
    return xp.reshape(xp.stack(rows, axis=1), (count(q), 3, 3))


def heading_yaw(rot: Array, gait: Array) -> Array:
    """(N,) yaw of the gait's forward axis: body x (quadrupedal), body x minus body z (bipedal).

    Standing on its rear legs the robot's nose points up and its belly (-z) forward; x - z points
    forward through the whole stand-up, so the heading never degenerates.
    """
    fwd = rot[:, :, 0] - (gait == BIPEDAL)[:, None] * rot[:, :, 2]
    return namespace(rot).atan2(fwd[:, 1], fwd[:, 0])


def heading_velocity(rot: Array, v_world: Array, w_body: Array, gait: Array) -> tuple[Array, Array]:
    """(N, 3) base velocity in the heading frame (the gait's forward axis' yaw; z stays world
    up) and (N,) world-z yaw rate, from rotations (N, 3, 3), world velocity and body rates."""
    xp = namespace(rot, v_world)
    yaw = heading_yaw(rot, gait)
    cy, sy = xp.cos(yaw), xp.sin(yaw)
    v_head = xp.stack(
        [
            cy * v_world[:, 0] + sy * v_world[:, 1],
            -sy * v_world[:, 0] + cy * v_world[:, 1],
            v_world[:, 2],
        ],
        axis=1,
    )
    return v_head, xp.sum(rot[:, 2, :] * w_body, axis=1)


def _writable(spec: ObservationSpec) -> ObservationSpec:
    """The same spec with writable scale arrays (torch refuses to wrap read-only ones)."""

    def terms(ts: tuple[ObservationTerm, ...]) -> tuple[ObservationTerm, ...]:
        return tuple(
            ObservationTerm(t.name, t.dim, np.array(t.scale, dtype=np.float64)) for t in ts
        )

    return ObservationSpec(terms(spec.proprio), terms(spec.command), spec.clip)


def _on_device(spec: ObservationSpec, device: torch.device) -> ObservationSpec:
    """The same spec with its scales as float64 tensors on ``device`` (observation builders
    place a scale beside the values it scales)."""

    def terms(ts: tuple[ObservationTerm, ...]) -> tuple[ObservationTerm, ...]:
        return tuple(
            ObservationTerm(t.name, t.dim, torch.tensor(t.scale, device=device))  # type: ignore[arg-type]
            for t in ts
        )

    return ObservationSpec(terms(spec.proprio), terms(spec.command), spec.clip)


def wrap_angle(a: Array) -> Array:
    return (a + np.pi) % (2 * np.pi) - np.pi


class MultitaskEnv:
    """N Go2 robots on the task tiles. See the module docstring for the contract."""

    def __init__(
        self,
        config: EnvConfig | None = None,
        num_envs: int | None = None,
        seed: int | None = None,
    ) -> None:
        cfg = config or load_env_config()
        changes = {}
        if num_envs is not None:
            changes["num_envs"] = num_envs
        if seed is not None:
            changes["seed"] = seed
        if changes:
            cfg = cfg.replace(**changes)
        self.config = cfg
        self.num_envs = n = cfg.num_envs
        self.dt = cfg.control_dt
        self.substeps = cfg.substeps
        self.rng = np.random.default_rng(cfg.seed)

        self.spec, self.model, self.tiles = build_env_model(cfg)
        self.idx = Go2Indices.from_model(self.model)
        self.link_adr, self.foot_adr = contact_sensor_addresses(self.model)
        self.control = ControlConfig(
            action_scale=cfg.control.action_scale,
            action_clip=cfg.control.action_clip,
            kp=cfg.control.kp,
            kd=cfg.control.kd,
            control_dt=self.dt,
        )
        self.observation = ObservationConfig(command_ranges=cfg.commands.ranges)
        self.obs_spec = _writable(self.observation.spec(go2.NUM_MOTORS))
        if self.control.joint_names != go2.JOINT_NAMES:
            raise ValueError("the environment trains in SDK joint order")
        self.default_q = self.control.default_joint_pos
        self.q_min, self.q_max = go2.JOINT_LOWER.copy(), go2.JOINT_UPPER.copy()
        self.torque_limit = self.idx.torque_limit.copy()

        # state layout (FULLPHYSICS: time, qpos, qvel; the robot's free joint comes first)
        m = self.model
        self._kind = mujoco.mjtState.mjSTATE_FULLPHYSICS
        self.nstate = mujoco.mj_stateSize(m, self._kind)
        if self.nstate != 1 + m.nq + m.nv or self.idx.base_qpos != 0:
            raise RuntimeError("unexpected state layout of the training model")
        self._qpos0, self._qvel0 = 1, 1 + m.nq
        self._jq = self._qpos0 + self.idx.qpos
        self._jv = self._qvel0 + self.idx.qvel
        data = mujoco.MjData(m)
        mujoco.mj_resetDataKeyframe(m, data, 0)
        self._template = np.zeros(self.nstate)
        mujoco.mj_getState(m, data, self._template, self._kind)
        self._spawn_z = pose_height() + SPAWN_CLEARANCE
        self._pitch_grid = np.linspace(0.0, np.pi / 2, 19)
        self._pitch_z = np.array([self._upright_height(m, a) for a in self._pitch_grid])
        self._pitch_z += SPAWN_CLEARANCE
        self._pitch_step = float(self._pitch_grid[1] - self._pitch_grid[0])

        # per-robot models, threads, buffers
        self.models = [copy.copy(m) for _ in range(n)]
        self.num_threads = cfg.num_threads or os.cpu_count() or 1
        c_threads = self.num_threads if cfg.backend == "mujoco" else 0  # Warp: no C physics
        self._datas = [mujoco.MjData(m) for _ in range(c_threads)]
        self._pool = rollout.Rollout(nthread=c_threads) if c_threads > 1 else None
        self._warp = None
        if cfg.backend == "warp":
            from moe_loco_training.env.warp_physics import WarpPhysics, warp_available

            reason = warp_available()
            if reason is not None:
                raise RuntimeError(f"env.backend warp: {reason}")
            self._warp = WarpPhysics(m, n, cfg.warp_device)
        self._warp_models_stale = True
        """Every robot's model copy changed (a restored state): Warp takes all of them."""
        self._warp_rows: set[int] = set()
        """Robots whose model copy a reset randomised since the last physics step."""
        self.state = np.tile(self._template, (n, 1))
        self._out_state = np.zeros((n, self.substeps, self.nstate))
        self._out_sens = np.zeros((n, self.substeps, m.nsensordata))
        self._ctrl = np.zeros((n, self.substeps, m.nu))
        self._sub = np.arange(self.substeps)[None, :, None]

        self.randomizer = Randomizer(
            cfg.randomization, m, self.idx, self.control.kp, self.control.kd, self.substeps
        )
        self._noise_amp = self.randomizer.noise_amplitude(self.obs_spec)
        self._noise_on = bool(self._noise_amp.any())
        self._upright_pose = UPRIGHT_POSE.copy()
        self._ctrl_idx = np.asarray(self.idx.ctrl)
        # the controller core's target law (command_guard.clamp_targets) as its two bounds
        self._target_lo = clamp_targets(np.full(go2.NUM_MOTORS, -np.inf))
        self._target_hi = clamp_targets(np.full(go2.NUM_MOTORS, np.inf))
        self._sigma_by_gait = np.zeros(len(GAIT_NAMES))
        self._sigma_by_gait[QUADRUPEDAL] = cfg.rewards.tracking_sigma
        self._sigma_by_gait[BIPEDAL] = rw.bipedal_sigma(cfg.rewards)
        # the tile grid's per-tile arrays, beside the robots' (on the Warp device there)
        self._origins = self.tiles.origins.copy()
        self._spawns = self.tiles.spawns.copy()
        self._course = self.tiles.course.copy()
        self._heights = self.tiles.heights.copy()

        # tasks: a fixed share of the robots per task (largest remainder), robot order fixed
        names = self.tiles.task_names
        self.task_names = names
        weights = np.array([cfg.terrain.tasks[t].weight for t in names])
        share = weights / weights.sum() * n
        counts = np.floor(share).astype(int)
        counts[np.argsort(-(share - counts), kind="stable")[: n - counts.sum()]] += 1
        self.task = np.repeat(np.arange(len(names)), counts)
        specs = [cfg.terrain.tasks[t] for t in names]
        self._task_gait = np.array([GAIT_NAMES.index(s.gait) for s in specs])[self.task]
        self._task_plane = np.array([s.kind == "plane" for s in specs])[self.task]
        self._task_still = np.array([s.stand_still for s in specs])[self.task]
        self._task_upright = np.array([s.upright_start for s in specs])[self.task]
        self._task_pitch_min = np.radians([s.upright_pitch_min for s in specs])[self.task]
        legs = ("FR", "FL", "RR", "RL")
        self.lifted_leg = np.array(
            [-1 if s.lift_leg is None else legs.index(s.lift_leg) for s in specs], dtype=np.int64
        )[self.task]
        """Per robot, the SDK index of the leg its task holds up (-1: none)."""
        # a plane robot switches gait at a resample only if the other gait walks on a plane
        # tile of this task set too (a quadrupedal-only set never issues a bipedal command)
        on_plane = {GAIT_NAMES.index(s.gait) for s in specs if s.kind == "plane"}
        switch = np.array(
            [s.kind == "plane" and (1 - GAIT_NAMES.index(s.gait)) in on_plane for s in specs]
        )
        self._task_switch = switch[self.task]
        # every tile a plane: the world is one ground plane, leaving a tile ends nothing
        self._all_plane = all_plane(cfg.terrain)

        # per-robot episode state
        self.level = np.zeros(n, dtype=np.int64)
        self.gait = self._task_gait.copy()
        self.gait_time = np.zeros(n)
        self.switched_in = np.zeros(n, dtype=bool)
        self.episode_time = np.zeros(n)
        self.episode_return = np.zeros(n)
        self.command = np.zeros((n, 3))
        self.command_timer = np.zeros(n)
        self.push_timer = np.zeros(n)
        self.latency = np.zeros(n, dtype=np.int64)
        self.friction = np.zeros(n)
        self.motor_strength = np.ones((n, 12))
        self.kp_eff = np.full((n, 12), self.control.kp)
        self.kd_eff = np.full((n, 12), self.control.kd)
        self.feet_air = np.zeros((n, 4))
        self.feet_contact = np.zeros((n, 4))
        self.last_contact = np.zeros((n, 4), dtype=bool)
        self.tracking_sum = np.zeros(n)
        self.last_action = np.zeros((n, 12))
        self.prev_target = np.tile(self.default_q, (n, 1))
        self.last_dq = np.zeros((n, 12))
        self.spawn_x = np.zeros(n)
        self._last_sens = np.zeros((n, m.nsensordata))
        self._obs_cache: dict[str, np.ndarray] = {}
        self._all_ids = np.arange(n)
        self._initialised = False
        self.physics_seconds = 0.0
        """Wall time spent inside ``mujoco.rollout`` so far (profiling)."""

        # where the arrays live: numpy on the host (C backend), torch tensors on the Warp device
        if self._warp is None:
            self.device = torch.device("cpu")
            self.rand: HostRandom | DeviceRandom = HostRandom(self.rng)
        else:
            self.device = self._warp.torch_device
            for k, v in list(vars(self).items()):
                if isinstance(v, np.ndarray):
                    setattr(self, k, torch.tensor(v, device=self.device))
            # per-step draws on the device; the C models' randomisation draws from self.rng
            self.rand = DeviceRandom(cfg.seed, self.device)
            # the observation scales beside the tensors they scale (no upload per step)
            self.obs_spec = _on_device(self.obs_spec, self.device)
        self.xp = namespace(self.state)
        self._dev = device_of(self.state)
        self._any_obstacle = bool(self.xp.any(~self._task_plane & ~self._task_still))

    # ------------------------------------------------------------------ properties
    @property
    def tile(self) -> np.ndarray:
        """(N,) each robot's tile index in ``env.tiles``."""
        return self.tiles.tile_index(self.task, self.level)

    def close(self) -> None:
        """Stop the physics threads."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # ------------------------------------------------------------------ state (exact resume)
    _TASK_ARRAYS = (
        "task",
        "_task_gait",
        "_task_plane",
        "_task_still",
        "_task_upright",
        "_task_pitch_min",
        "lifted_leg",
        "_task_switch",
    )
    """Per-robot arrays the configuration's task shares decide (not evolving state)."""
    _SCALAR_STATE = ("_initialised",)
    _SCRATCH = ("_out_state", "_out_sens", "_ctrl")
    """Buffers every step overwrites before reading: not state (2 MB of a 512-robot snapshot)."""
    _DERIVED = (
        "_origins",
        "_spawns",
        "_course",
        "_heights",
        "_target_lo",
        "_target_hi",
        "_sigma_by_gait",
        "_upright_pose",
        "_ctrl_idx",
        "_all_ids",
    )
    """Arrays the configuration and the code derive (the tiles, the target law, index vectors):
    neither saved nor restored, so a checkpoint never overrides what this code builds (a state
    that holds them, as some of this code's first checkpoints do, loads with them ignored)."""

    def _arrays(self) -> dict[str, Array]:
        return {
            k: v
            for k, v in vars(self).items()
            if (isinstance(v, np.ndarray) or is_torch(v))
            and k not in self._SCRATCH
            and k not in self._DERIVED
        }

    def _put(self, value: np.ndarray) -> Array:
        """A host array as one of this environment's (a copy; on its device)."""
        if self._warp is None:
            return np.array(value)
        return torch.tensor(value, device=self.device)

    def state_dict(self) -> dict:
        """Everything that evolves in the environment, as CPU tensors and plain values
        (``torch.load(weights_only=True)``-safe): every array attribute (robot states, timers,
        commands, levels, per-robot randomised parameters, ...), the random generators' states
        and the fields the domain randomisation wrote into each robot's model copy. The same
        layout from either backend."""
        arrays = {k: to_torch(clone(v)).cpu() for k, v in self._arrays().items()}
        models = {
            f: torch.from_numpy(np.stack([getattr(m, f) for m in self.models]))
            for f in MODEL_FIELDS
        }
        scalars = {k: getattr(self, k) for k in self._SCALAR_STATE if hasattr(self, k)}
        out = {
            "arrays": arrays,
            "models": models,
            "scalars": scalars,
            "rng": self.rng.bit_generator.state,
        }
        if isinstance(self.rand, DeviceRandom):
            out["device_rng"] = self.rand.state()
        return out

    def load_state_dict(self, state: dict) -> bool:
        """Continue from :meth:`state_dict` of an environment built from the same configuration;
        a state that does not fit raises ``ValueError`` naming the attribute, before any change.

        A state whose robots hold other tasks than this configuration's shares give them (a
        campaign that rebalances ``terrain.tasks.<task>.weight`` on resume; the same tasks)
        continues the generator, gives each robot of a task a curriculum level drawn from the
        levels that task's robots held, and resets every robot (a new episode and a new
        randomisation draw): the run goes on from the same curricula, not bit-exactly. Returns
        True then (the caller observes afresh), False for an exact continuation."""
        saved = state["arrays"].get("task")
        old_task = None if saved is None else saved.numpy()
        task = host(self.task)
        rebalance = old_task is not None and not np.array_equal(old_task, task)
        if rebalance:
            have = set(old_task.tolist())
            missing = [self.task_names[t] for t in set(task.tolist()) - have]
            if missing:
                raise ValueError(f"environment state has no robots of task(s) {missing}")
        mine = self._arrays()
        saved_arrays = {k: v for k, v in state["arrays"].items() if k not in self._DERIVED}
        for k, v in saved_arrays.items():
            cur = mine.get(k)
            if cur is None or tuple(cur.shape) != tuple(v.shape):
                raise ValueError(f"environment state does not fit: attribute {k!r}")
        for f in MODEL_FIELDS:
            values = state["models"].get(f)
            if values is None or tuple(values.shape[1:]) != getattr(self.models[0], f).shape:
                raise ValueError(f"environment state does not fit: model field {f!r}")
        device_rng = state.get("device_rng")
        for k, v in saved_arrays.items():
            if not (rebalance and k in self._TASK_ARRAYS):
                setattr(self, k, self._put(v.numpy()))
        scratch = mujoco.MjData(self.model)
        for i, m in enumerate(self.models):
            for f in MODEL_FIELDS:
                getattr(m, f)[...] = state["models"][f][i].numpy()
            mujoco.mj_setConst(m, scratch)  # mass-dependent constants, as the randomiser does
        for k, v in state["scalars"].items():
            setattr(self, k, v)
        self.rng.bit_generator.state = state["rng"]
        if isinstance(self.rand, DeviceRandom):
            own = tuple(self.rand.state().shape)
            if device_rng is not None and tuple(device_rng.shape) == own:
                self.rand.set_state(device_rng)
            else:
                # a C-backend state (or another device kind's): the device draws continue from
                # a seed the restored host generator gives (deterministic, not the same stream;
                # a CPU campaign continues on a GPU this way)
                self.rand = DeviceRandom(int(self.rng.integers(2**62)), self.device)
        self._warp_models_stale = True
        if rebalance:
            old_level = state["arrays"]["level"].numpy()
            for t in range(len(self.task_names)):
                rows = np.flatnonzero(task == t)
                pool = old_level[old_task == t]
                self.level[self._put(rows)] = self._put(self.rng.choice(pool, rows.size))
            self.reset_ids(self._all_ids)
            self._update_heading_commands(self._rotation(self.state))
        return rebalance

    def __enter__(self) -> MultitaskEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ physics
    def physics_step(self, ctrl: Array) -> None:
        """Advance every robot ``substeps`` physics steps under ``ctrl`` (N, substeps, nu);
        ``self._out_state`` / ``self._out_sens`` then hold every substep's state and sensors
        (numpy on the C backend; on the Warp backend, the device tensors Warp wrote)."""
        kwargs = dict(
            nstep=self.substeps,
            control_spec=int(mujoco.mjtState.mjSTATE_CTRL),
            state=self._out_state,
            sensordata=self._out_sens,
            skip_checks=True,
        )
        t = time.perf_counter()
        if self._warp is not None:
            # the same inputs and outputs as mujoco.rollout's; Warp's clock is float32, so the
            # substep times are the exact grid (the divergence check compares them)
            if self._warp_models_stale:
                self._warp.set_model_fields(self.models)
                self._warp_models_stale = False
            elif self._warp_rows:
                self._warp.set_model_fields(self.models, rows=sorted(self._warp_rows))
            self._warp_rows.clear()
            self._warp.set_state(self.state)
            self._out_state, self._out_sens = self._warp.rollout(ctrl)
            dt = self.config.timestep
            self._out_state[:, :, 0] = self.state[:, :1] + dt * (self._sub[0, :, 0] + 1)
        elif self._pool is not None:
            self._pool.rollout(self.models, self._datas, self.state, ctrl, **kwargs)
        else:
            rollout.rollout(self.models, self._datas, self.state, ctrl, **kwargs)
        self.physics_seconds += time.perf_counter() - t

    # ------------------------------------------------------------------ resets
    def _sample_commands(self, ids: Array, allow_switch: bool) -> None:
        k = count(ids)
        if k == 0:
            return
        xp, c, rand = self.xp, self.config.commands, self.rand
        plane = self._task_plane[ids]
        if allow_switch:
            flip = self._task_switch[ids] & (rand.random(k) < c.gait_switch_prob)
            f = ids[flip]
            self.gait[f] = 1 - self.gait[f]
            self.gait_time[f] = 0.0
            self.switched_in[f] = True
        levels = self.tiles.levels
        frac = self.level[ids] / max(levels - 1, 1)
        scale = c.plane_min_scale + (1.0 - c.plane_min_scale) * frac
        cmd = xp.zeros((k, 3), dtype=xp.float64, device=self._dev)
        u = rand.random((k, 5))
        for g, name in enumerate(GAIT_NAMES):
            r = c.ranges[name]
            sel = self.gait[ids] == g
            for j, ax in enumerate(("vx", "vy", "wz")):
                lo, hi = r[ax]
                v = (lo + (hi - lo) * u[:, j]) * scale
                cmd[:, j] = xp.where(sel & plane, v, cmd[:, j])
            lo, hi = c.obstacle_vx[name]
            cmd[:, 0] = xp.where(sel & ~plane, lo + (hi - lo) * u[:, 3], cmd[:, 0])
        cmd[self._task_still[ids] | (plane & (u[:, 4] < c.zero_prob))] = 0.0
        self.command[ids] = cmd
        self.command_timer[ids] = c.resampling_time_s

    def _upright_height(self, m: mujoco.MjModel, pitch: float = np.pi / 2) -> float:
        """Base height [m] at which the lowest foot touches z = 0, the body pitched nose-up by
        ``pitch`` and the joints that share of the way from the default pose to
        :data:`UPRIGHT_POSE`."""
        d = mujoco.MjData(m)
        d.qpos[:3] = (0.0, 0.0, 1.0)
        d.qpos[3:7] = (np.cos(-pitch / 2), 0.0, np.sin(-pitch / 2), 0.0)
        frac = pitch / (np.pi / 2)
        d.qpos[self.idx.qpos] = self.default_q + frac * (UPRIGHT_POSE - self.default_q)
        mujoco.mj_kinematics(m, d)
        feet = np.asarray(self.idx.foot_geoms)
        low = d.geom_xpos[feet, 2] - m.geom_size[feet, 0]
        return float(1.0 - low.min())

    def _interp_pitch_z(self, pitch: Array) -> Array:
        """The spawn height of a robot pitched up by ``pitch`` (numpy's ``interp`` on the
        pitch grid: it is uniform, so the segment is found by division)."""
        xp, grid, z, step = self.xp, self._pitch_grid, self._pitch_z, self._pitch_step
        j = xp.clip(xp.astype(xp.floor((pitch - grid[0]) / step), xp.int64), 0, count(grid) - 2)
        slope = (z[j + 1] - z[j]) / (grid[j + 1] - grid[j])
        return xp.where(pitch >= grid[-1], z[-1], slope * (pitch - grid[j]) + z[j])

    def reset_ids(self, ids: Array) -> None:
        """Reset the robots ``ids``: curriculum level, tile, pose, randomisation, commands."""
        k = count(ids)
        if k == 0:
            return
        xp, rand, cfg = self.xp, self.rand, self.config
        tile = self.tiles.tile_index(self.task[ids], self.level[ids])
        origin, spawn = self._origins[tile], self._spawns[tile]
        plane = self._task_plane[ids]
        yaw = xp.where(
            plane,
            rand.uniform(-np.pi, np.pi, k),
            rand.uniform(-OBSTACLE_YAW_NOISE, OBSTACLE_YAW_NOISE, k),
        )
        s = self._template + xp.zeros((k, self.nstate), dtype=xp.float64, device=self._dev)
        s[:, 1] = origin[:, 0] + spawn[:, 0]
        s[:, 2] = origin[:, 1] + spawn[:, 1] + rand.uniform(-SPAWN_Y_NOISE, SPAWN_Y_NOISE, k)
        s[:, 3] = spawn[:, 2] + self._spawn_z
        s[:, 4], s[:, 7] = xp.cos(yaw / 2), xp.sin(yaw / 2)
        s[:, 5], s[:, 6] = 0.0, 0.0
        q = self.default_q + rand.uniform(-SPAWN_JOINT_NOISE, SPAWN_JOINT_NOISE, (k, 12))
        p_up = self._task_upright[ids]
        if bool(xp.any(p_up > 0)):  # no draw otherwise: such task sets keep their random stream
            up = rand.random(k) < p_up
            lo = self._task_pitch_min[ids]
            if bool(xp.any(lo[up] < np.pi / 2)):  # part-way up: one more draw, where configured
                pitch = lo + (np.pi / 2 - lo) * rand.random(k)
            else:
                pitch = xp.zeros_like(lo) + np.pi / 2
            if bool(xp.any(up)):
                frac = (pitch[up] / (np.pi / 2))[:, None]
                q[up] += frac * (self._upright_pose - self.default_q)
                s[up, 3] = spawn[up, 2] + self._interp_pitch_z(pitch[up])
                zero = 0 * yaw[up]
                yaw_q = xp.stack([xp.cos(yaw[up] / 2), zero, zero, xp.sin(yaw[up] / 2)], axis=1)
                half = -pitch[up] / 2  # nose up: a negative rotation about the body y axis
                pitch_q = xp.stack([xp.cos(half), 0 * half, xp.sin(half), 0 * half], axis=1)
                s[up, 4:8] = _quat_mul_batch(yaw_q, pitch_q)
        s[:, self._jq] = xp.minimum(xp.maximum(q, self.q_min), self.q_max)
        s[:, self._qvel0 :] = 0.0
        self.state[ids] = s
        self.spawn_x[ids] = spawn[:, 0]
        # domain randomisation: each robot's C model copy, from the host generator
        rows = host(ids).tolist()
        params = []
        for i in rows:
            p = self.randomizer.draw(self.rng)
            self.randomizer.apply(self.models[i], p)
            params.append(p)
        if self._warp is not None:
            self._warp_rows.update(rows)
        gains = [p.gains(self.control.kp, self.control.kd) for p in params]
        self.friction[ids] = self._put(np.array([p.friction for p in params]))
        self.motor_strength[ids] = self._put(np.stack([p.motor_strength for p in params]))
        self.kp_eff[ids] = self._put(np.stack([g[0] for g in gains]))
        self.kd_eff[ids] = self._put(np.stack([g[1] for g in gains]))
        self.latency[ids] = self._put(np.array([p.latency for p in params], dtype=np.int64))
        self.gait[ids] = self._task_gait[ids]
        self.gait_time[ids] = 0.0
        self.switched_in[ids] = False
        self.episode_time[ids] = 0.0
        self.episode_return[ids] = 0.0
        self.last_action[ids] = 0.0
        self.prev_target[ids] = s[:, self._jq]
        self.last_dq[ids] = 0.0
        self._last_sens[ids] = 0.0
        self.feet_air[ids] = 0.0
        self.feet_contact[ids] = 0.0
        self.last_contact[ids] = False
        self.tracking_sum[ids] = 0.0
        interval = cfg.randomization.push_interval_s
        if interval > 0:
            self.push_timer[ids] = rand.uniform(0.0, interval, k)
        else:
            self.push_timer[ids] = np.inf
        self._sample_commands(ids, allow_switch=False)

    def reset(self) -> EnvStep:
        """Reset every robot (levels drawn from 0..init_max_level) and observe."""
        self.level[:] = self.rand.integers(0, self.config.terrain.init_max_level + 1, self.num_envs)
        self.reset_ids(self._all_ids)
        self._initialised = True
        self._update_heading_commands(self._rotation(self.state))
        return self.observe()

    def set_commands(self, command: Array) -> None:
        """Command every robot (N, 3) (vx, vy [m/s] heading frame, wz [rad/s]) from now on, until
        the next resample (evaluation: set ``commands.resampling_time_s`` beyond the run)."""
        command = self._put(host(command).astype(np.float64))
        if tuple(command.shape) != (self.num_envs, 3) or not bool(
            self.xp.all(self.xp.isfinite(command))
        ):
            raise ValueError(f"command must be finite, shape ({self.num_envs}, 3)")
        self.command[:] = command

    def base_heading_velocity(self) -> tuple[Array, Array]:
        """Now: (N, 3) base velocity in the heading frame and (N,) yaw rate, as rewarded."""
        s = self.state
        v = s[:, self._qvel0 : self._qvel0 + 3]
        w = s[:, self._qvel0 + 3 : self._qvel0 + 6]
        return heading_velocity(self._rotation(s), v, w, self.gait)

    def observe(self) -> EnvStep:
        """The observation of the current state (zero reward, nothing done)."""
        obs = self._observe(self.state, self._last_sens)
        z = self.xp.zeros_like(self.episode_time)
        no = z > 0.0
        return self._pack(obs, z, no, no, no, {}, {})

    # ------------------------------------------------------------------ observation
    def _rotation(self, state: Array) -> Array:
        return quat_to_matrix(state[:, self._qpos0 + 3 : self._qpos0 + 7])

    def _update_heading_commands(self, rot: Array) -> None:
        if not self._any_obstacle:
            return
        obstacle = ~self._task_plane & ~self._task_still
        c = self.config.commands
        err = wrap_angle(-heading_yaw(rot, self.gait))
        for g, name in enumerate(GAIT_NAMES):
            lo, hi = c.ranges[name]["wz"]
            sel = obstacle & (self.gait == g)
            self.command[sel, 2] = self.xp.clip(c.heading_gain * err[sel], lo, hi)

    def _observe(self, state: Array, sens: Array) -> dict[str, Array]:
        xp = self.xp
        q = state[:, self._jq]
        dq = state[:, self._jv]
        quat = state[:, self._qpos0 + 3 : self._qpos0 + 7]
        w_body = state[:, self._qvel0 + 3 : self._qvel0 + 6]
        proprio = build_proprio(
            self.obs_spec,
            quat_wxyz=to_torch(quat),
            base_ang_vel=to_torch(w_body),
            joint_pos_rel=to_torch(q - self.default_q),
            joint_vel=to_torch(dq),
            last_action=to_torch(self.last_action),
        )
        proprio = like_input(proprio, state)
        clean = clone(proprio)
        if self._noise_on:
            proprio = proprio + self._noise_amp * self.rand.uniform(-1.0, 1.0, proprio.shape)
        rot = self._rotation(state)
        v_world = state[:, self._qvel0 : self._qvel0 + 3]
        v_body = xp.sum(rot * v_world[:, :, None], axis=1)
        explicit = xp.concat([v_body, self.friction[:, None]], axis=1)
        links = -xp.reshape(sens[:, self.link_adr], (count(state), IMPLICIT_DIM))
        return {
            "proprio": proprio,
            "proprio_clean": clean,
            "explicit": explicit,
            "implicit": links * self.config.implicit_scale,
        }

    def proprio_clean(self) -> torch.Tensor:
        """The current proprioception without observation noise (the parity test's input)."""
        return to_torch(self._observe(self.state, self._last_sens)["proprio_clean"])

    def _curriculum_means(self) -> dict[str, float]:
        """Each task's mean curriculum level (0 for a task without robots): one transfer of a
        value per task, whatever the backend."""
        task, level = to_torch(self.task), to_torch(self.level)
        t = len(self.task_names)
        sums = torch.zeros(t, dtype=torch.float64, device=task.device)
        sums.index_add_(0, task, level.to(torch.float64))
        counts = torch.bincount(task, minlength=t).to(torch.float64)
        means = torch.where(counts > 0, sums / counts.clamp_min(1.0), 0.0).tolist()
        return dict(zip(self.task_names, means, strict=True))

    def _pack(
        self,
        obs: dict[str, Array],
        reward: Array,
        done: Array,
        time_out: Array,
        term: Array,
        terms: dict[str, Array],
        episode: dict[str, float],
    ) -> EnvStep:
        f32, t = torch.float32, to_torch
        command = build_command(self.obs_spec, t(self.command), t(self.gait))
        infos = {
            "reward_terms": {k: t(v).to(f32) for k, v in terms.items()},
            "terminated": t(clone(term)),
            "task": t(clone(self.task)),
            "level": t(clone(self.level)),
            "gait": t(clone(self.gait)),
            "curriculum": self._curriculum_means(),
            "episode": episode,
        }
        return EnvStep(
            proprio=t(obs["proprio"]).to(f32),
            privileged_explicit=t(obs["explicit"]).to(f32),
            privileged_implicit=t(obs["implicit"]).to(f32),
            command=command.to(f32),
            reward=t(reward).to(f32),
            done=t(clone(done)),
            time_out=t(clone(time_out)),
            infos=infos,
        )

    # ------------------------------------------------------------------ the step
    def step(self, actions: torch.Tensor | np.ndarray) -> EnvStep:
        """One control step for every robot; see the module docstring."""
        if not self._initialised:
            raise RuntimeError("call reset() before step()")
        cfg, n, xp = self.config, self.num_envs, self.xp
        if self._warp is None:
            a = actions.detach().cpu().numpy() if is_torch(actions) else actions
            a = np.asarray(a, dtype=np.float64)
        else:
            a = actions if is_torch(actions) else torch.as_tensor(actions, device=self.device)
            a = a.detach().to(self.device, torch.float64)
        if tuple(a.shape) != (n, 12):
            raise ValueError(f"actions must have shape ({n}, 12), got {tuple(a.shape)}")
        clip = self.control.action_clip
        a = xp.clip(xp.where(xp.isnan(a), 0.0, a), -clip, clip)
        # the controller core's target law: its command guard clamps every target to the joint's
        # range plus a margin before it reaches a motor, so training clamps them too (a policy
        # that learnt to stand up with calf targets 1.3 rad past the range fell on the robot)
        target = self.default_q + self.control.action_scale * a
        target = xp.minimum(xp.maximum(target, self._target_lo), self._target_hi)

        # control schedule: the previous target until the latency has passed
        late = self._sub < self.latency[:, None, None]
        targets = xp.where(late, self.prev_target[:, None, :], target[:, None, :])
        self._ctrl[:, :, self._ctrl_idx] = targets

        # pushes
        self.push_timer -= self.dt
        due = indices(self.push_timer <= 0.0)
        if count(due):
            v = self.randomizer.push_velocity(self.rand, count(due))
            self.state[due, self._qvel0 : self._qvel0 + 2] += v
            self.push_timer[due] = cfg.randomization.push_interval_s

        start = clone(self.state)
        self.physics_step(self._ctrl)
        out, sens = self._out_state, self._out_sens
        # a diverged robot: non-finite values, or MuJoCo's own reset of an unstable MjData
        # (its time restarts); it terminates and is replaced by the spawn template until reset
        expected_time = start[:, 0] + self.substeps * cfg.timestep
        finite = xp.all(xp.isfinite(out), axis=(1, 2)) & xp.all(xp.isfinite(sens), axis=(1, 2))
        finite &= xp.abs(out[:, -1, 0] - expected_time) < 1e-6
        if not bool(xp.all(finite)):
            out[~finite] = self._template
            sens[~finite] = 0.0
            start[~finite] = self._template
        new = out[:, -1]
        self.state[:] = new
        sens_last = sens[:, -1]
        self._last_sens[:] = sens_last

        # substep quantities (state at the start of each substep)
        sub_states = xp.concat([start[:, None], out[:, :-1]], axis=1)
        q_sub = sub_states[:, :, self._jq]
        dq_sub = sub_states[:, :, self._jv]
        kp, kd = self.kp_eff[:, None, :], self.kd_eff[:, None, :]
        tau_des = kp * (targets - q_sub) - kd * dq_sub
        tau = xp.minimum(xp.maximum(tau_des, -self.torque_limit), self.torque_limit)

        # the new state
        q, dq = new[:, self._jq], new[:, self._jv]
        rot = self._rotation(new)
        gravity = -rot[:, 2, :]
        v_world = new[:, self._qvel0 : self._qvel0 + 3]
        w_body = new[:, self._qvel0 + 3 : self._qvel0 + 6]
        v_head, yaw_rate = heading_velocity(rot, v_world, w_body, self.gait)
        link_force = -sens_last[:, self.link_adr]
        foot_z = -sens_last[:, self.foot_adr[:, 2]]
        calf_z = link_force[:, take(CALF_LINKS, link_force), 2] - foot_z
        tile = self.tile
        origin = self._origins[tile]
        x_rel = new[:, 1] - origin[:, 0]
        y_rel = new[:, 2] - origin[:, 1]
        cells = self._heights.shape[1]
        cell = xp.astype(xp.round(x_rel / self.tiles.resolution), xp.int64)
        height = new[:, 3] - self._heights[tile, xp.clip(cell, 0, cells - 1)]
        ddq = (dq - self.last_dq) / self.dt

        self.episode_time += self.dt
        self.gait_time += self.dt
        term = terminated(
            self.gait,
            gravity,
            link_force,
            self.gait_time,
            self.switched_in,
            finite,
            cfg.terminations,
        )
        time_out = timed_out(self.episode_time, cfg.episode_length_s)
        if not self._all_plane:
            time_out |= out_of_tile(x_rel, y_rel, cfg.terrain.tile_length, cfg.terrain.tile_width)
        time_out &= ~term
        done = term | time_out

        # feet air time (legged_gym): a touchdown is contact now or at the last step (the
        # contact filter of soft ground), after time in the air
        contact = foot_z > cfg.rewards.contact_threshold
        touch = contact | self.last_contact
        self.feet_air += self.dt
        landed = xp.where(touch & (self.feet_air > self.dt), self.feet_air, 0.0)
        self.feet_air[touch] = 0.0
        self.feet_contact = xp.where(touch, self.feet_contact + self.dt, 0.0)
        self.last_contact = contact

        inputs = rw.RewardInputs(
            command=clone(self.command),
            lin_vel=v_head,
            yaw_rate=yaw_rate,
            ang_vel_body=w_body,
            q=q,
            dq=dq,
            ddq=ddq,
            q_default=self.default_q,
            q_min=self.q_min,
            q_max=self.q_max,
            torque_limit=self.torque_limit,
            q_sub=q_sub,
            dq_sub=dq_sub,
            tau_sub=tau,
            tau_des_sub=tau_des,
            foot_force_z=foot_z,
            calf_force_z=calf_z,
            link_force=link_force,
            base_height=height,
            up_cos=rot[:, 2, 0],
            base_up_z=rot[:, 2, 2],
            gait_time=self.gait_time,
            action=a,
            last_action=self.last_action,
            terminated=term,
            feet_air_time=landed,
            lifted_leg=self.lifted_leg,
            feet_mode_time=xp.where(touch, self.feet_contact, self.feet_air),
            feet_in_contact=touch,
        )
        reward, terms = rw.compute_rewards(inputs, self.gait, cfg.rewards, self.dt)
        self.episode_return += reward
        # the plane curriculum's tracking, with each gait's own sigma
        sigma = self._sigma_by_gait[self.gait]
        self.tracking_sum += rw.tracking_lin_vel(inputs, cfg.rewards, sigma)

        self.last_action = a
        self.prev_target = target
        self.last_dq = clone(dq)

        # resets, with the curriculum deciding the next level
        ids = indices(done)
        k = count(ids)
        episode: dict[str, float] = {"count": float(k)}
        if k:
            episode["mean_return"] = float(xp.mean(self.episode_return[ids]))
            episode["mean_length_s"] = float(xp.mean(self.episode_time[ids]))
            if cfg.curriculum.enabled:
                distance = x_rel[ids] - self.spawn_x[ids]
                commanded = xp.abs(self.command[ids, 0]) * self.episode_time[ids]
                steps = xp.clip(xp.round(self.episode_time[ids] / self.dt), 1.0, None)
                self.level[ids], _, _ = update_levels(
                    self.level[ids],
                    self._task_plane[ids],
                    distance,
                    self._course[tile[ids]],
                    commanded,
                    time_out[ids],
                    self.tiles.levels,
                    cfg.curriculum,
                    self.rand,
                    tracking=self.tracking_sum[ids] / steps,
                )
            self.reset_ids(ids)

        # command resampling (plane tiles may switch gait) and heading hold
        self.command_timer -= self.dt
        self.command_timer[ids] = cfg.commands.resampling_time_s
        self._sample_commands(indices(self.command_timer <= 0.0), allow_switch=True)
        self._update_heading_commands(self._rotation(self.state))

        obs = self._observe(self.state, self._last_sens)
        return self._pack(obs, reward, done, time_out, term, terms, episode)


def make_env(config: EnvConfig | None = None, **overrides: object) -> MultitaskEnv:
    """An environment from the packaged YAML (or ``config``) with dotted-key overrides."""
    cfg = config or load_env_config()
    if overrides:
        cfg = cfg.replace(**{k.replace("__", "."): v for k, v in overrides.items()})
    return MultitaskEnv(cfg)


__all__ = ["BIPEDAL", "QUADRUPEDAL", "EnvStep", "MultitaskEnv", "TileGrid", "make_env"]
