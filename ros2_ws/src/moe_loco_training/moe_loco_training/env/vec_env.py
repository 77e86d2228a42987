"""The multitask Go2 environment: N robots in vectorised C MuJoCo, torch tensors at the boundary.

The environment contract (what a second backend, e.g. IsaacGym, implements the same way)
-------------------------------------------------------------------------------------------
``env = MultitaskEnv(config)``; ``env.num_envs`` robots, control period ``env.dt`` (0.02 s:
50 Hz, 4 physics substeps of 0.005 s), actions (N, 12) in the policy's joint order (SDK order),
float32 CPU torch tensors everywhere.

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
``numpy.random.Generator`` seeded by ``config.seed``: same seed, same actions -> bit-identical
tensors.

This backend
------------
All tiles (``env.tiles``) live in one MuJoCo model; each robot has its own copy of it (its
domain-randomised friction, masses and motor strengths) and its own state row. One control step
is one ``mujoco.rollout`` call over all robots, ``substeps`` physics steps each, in native
threads; the PD law runs in the engine at every substep (PD-servo actuators, torque-limited),
with the joint targets as controls (so action latency is a per-substep control schedule). The
targets are the controller core's: ``default + action_scale * clip(action)``, clamped to each
joint's range plus its margin (``moe_loco_controller.core.command_guard.clamp_targets``). The
observation, reward, termination and curriculum code is vectorised numpy over the robots.
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


def _quat_mul_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton products a * b of (k, 4) quaternions, row by row (w, x, y, z)."""
    w1, x1, y1, z1 = a.T
    w2, x2, y2, z2 = b.T
    return np.stack(
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


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(N, 4) unit quaternions w, x, y, z -> (N, 3, 3) rotation matrices (body -> world)."""
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    r = np.empty((len(q), 3, 3))
    r[:, 0, 0] = 1 - 2 * (y * y + z * z)
    r[:, 0, 1] = 2 * (x * y - w * z)
    r[:, 0, 2] = 2 * (x * z + w * y)
    r[:, 1, 0] = 2 * (x * y + w * z)
    r[:, 1, 1] = 1 - 2 * (x * x + z * z)
    r[:, 1, 2] = 2 * (y * z - w * x)
    r[:, 2, 0] = 2 * (x * z - w * y)
    r[:, 2, 1] = 2 * (y * z + w * x)
    r[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return r


def heading_yaw(rot: np.ndarray, gait: np.ndarray) -> np.ndarray:
    """(N,) yaw of the gait's forward axis: body x (quadrupedal), body x minus body z (bipedal).

    Standing on its rear legs the robot's nose points up and its belly (-z) forward; x - z points
    forward through the whole stand-up, so the heading never degenerates.
    """
    fwd = rot[:, :, 0] - (gait == BIPEDAL)[:, None] * rot[:, :, 2]
    return np.arctan2(fwd[:, 1], fwd[:, 0])


def heading_velocity(
    rot: np.ndarray, v_world: np.ndarray, w_body: np.ndarray, gait: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) base velocity in the heading frame (the gait's forward axis' yaw; z stays world
    up) and (N,) world-z yaw rate, from rotations (N, 3, 3), world velocity and body rates."""
    yaw = heading_yaw(rot, gait)
    cy, sy = np.cos(yaw), np.sin(yaw)
    v_head = np.stack(
        [
            cy * v_world[:, 0] + sy * v_world[:, 1],
            -sy * v_world[:, 0] + cy * v_world[:, 1],
            v_world[:, 2],
        ],
        axis=1,
    )
    return v_head, np.einsum("nj,nj->n", rot[:, 2, :], w_body)


def _writable(spec: ObservationSpec) -> ObservationSpec:
    """The same spec with writable scale arrays (torch refuses to wrap read-only ones)."""

    def terms(ts: tuple[ObservationTerm, ...]) -> tuple[ObservationTerm, ...]:
        return tuple(
            ObservationTerm(t.name, t.dim, np.array(t.scale, dtype=np.float64)) for t in ts
        )

    return ObservationSpec(terms(spec.proprio), terms(spec.command), spec.clip)


def wrap_angle(a: np.ndarray) -> np.ndarray:
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

        # per-robot models, threads, buffers
        self.models = [copy.copy(m) for _ in range(n)]
        self.num_threads = cfg.num_threads or os.cpu_count() or 1
        self._datas = [mujoco.MjData(m) for _ in range(self.num_threads)]
        self._pool = rollout.Rollout(nthread=self.num_threads) if self.num_threads > 1 else None
        self._warp = None
        if cfg.backend == "warp":
            from moe_loco_training.env.warp_physics import WarpPhysics, warp_available

            reason = warp_available()
            if reason is not None:
                raise RuntimeError(f"env.backend warp: {reason}")
            self._warp = WarpPhysics(m, n, cfg.warp_device)
        self._warp_models_stale = True
        """The robots' model copies changed (a reset's randomisation, a restored state)."""
        self.state = np.tile(self._template, (n, 1))
        self._out_state = np.zeros((n, self.substeps, self.nstate))
        self._out_sens = np.zeros((n, self.substeps, m.nsensordata))
        self._ctrl = np.zeros((n, self.substeps, m.nu))
        self._sub = np.arange(self.substeps)[None, :, None]

        self.randomizer = Randomizer(
            cfg.randomization, m, self.idx, self.control.kp, self.control.kd, self.substeps
        )
        self._noise_amp = self.randomizer.noise_amplitude(self.obs_spec)

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
        self._initialised = False
        self.physics_seconds = 0.0
        """Wall time spent inside ``mujoco.rollout`` so far (profiling)."""

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

    def state_dict(self) -> dict:
        """Everything that evolves in the environment, as tensors and plain values
        (``torch.load(weights_only=True)``-safe): every numpy array attribute (robot states,
        timers, commands, levels, per-robot randomised parameters, ...), the random generator's
        state and the fields the domain randomisation wrote into each robot's model copy."""
        arrays = {
            k: torch.from_numpy(v.copy())
            for k, v in vars(self).items()
            if isinstance(v, np.ndarray) and k not in self._SCRATCH
        }
        models = {
            f: torch.from_numpy(np.stack([getattr(m, f) for m in self.models]))
            for f in MODEL_FIELDS
        }
        scalars = {k: getattr(self, k) for k in self._SCALAR_STATE if hasattr(self, k)}
        return {
            "arrays": arrays,
            "models": models,
            "scalars": scalars,
            "rng": self.rng.bit_generator.state,
        }

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
        rebalance = old_task is not None and not np.array_equal(old_task, self.task)
        if rebalance:
            have = set(old_task.tolist())
            missing = [self.task_names[t] for t in set(self.task.tolist()) - have]
            if missing:
                raise ValueError(f"environment state has no robots of task(s) {missing}")
        for k, v in state["arrays"].items():
            cur = getattr(self, k, None)
            if not isinstance(cur, np.ndarray) or cur.shape != tuple(v.shape):
                raise ValueError(f"environment state does not fit: attribute {k!r}")
        for f in MODEL_FIELDS:
            values = state["models"].get(f)
            if values is None or tuple(values.shape[1:]) != getattr(self.models[0], f).shape:
                raise ValueError(f"environment state does not fit: model field {f!r}")
        for k, v in state["arrays"].items():
            if not (rebalance and k in self._TASK_ARRAYS):
                setattr(self, k, v.numpy().copy())
        scratch = mujoco.MjData(self.model)
        for i, m in enumerate(self.models):
            for f in MODEL_FIELDS:
                getattr(m, f)[...] = state["models"][f][i].numpy()
            mujoco.mj_setConst(m, scratch)  # mass-dependent constants, as the randomiser does
        for k, v in state["scalars"].items():
            setattr(self, k, v)
        self.rng.bit_generator.state = state["rng"]
        self._warp_models_stale = True
        if rebalance:
            old_level = state["arrays"]["level"].numpy()
            for t in range(len(self.task_names)):
                mine = np.flatnonzero(self.task == t)
                pool = old_level[old_task == t]
                self.level[mine] = self.rng.choice(pool, mine.size)
            self.reset_ids(np.arange(self.num_envs))
            self._update_heading_commands(self._rotation(self.state))
        return rebalance

    def __enter__(self) -> MultitaskEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ physics
    def physics_step(self, ctrl: np.ndarray) -> None:
        """Advance every robot ``substeps`` physics steps under ``ctrl`` (N, substeps, nu);
        ``self._out_state`` / ``self._out_sens`` then hold every substep's state and sensors."""
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
            self._warp.set_state(self.state)
            states, sens = self._warp.rollout(ctrl)
            self._out_state[:] = states.cpu().numpy()
            self._out_sens[:] = sens.cpu().numpy()
            dt = self.config.timestep
            self._out_state[:, :, 0] = self.state[:, :1] + dt * np.arange(1, self.substeps + 1)
        elif self._pool is not None:
            self._pool.rollout(self.models, self._datas, self.state, ctrl, **kwargs)
        else:
            rollout.rollout(self.models, self._datas, self.state, ctrl, **kwargs)
        self.physics_seconds += time.perf_counter() - t

    # ------------------------------------------------------------------ resets
    def _sample_commands(self, ids: np.ndarray, allow_switch: bool) -> None:
        if ids.size == 0:
            return
        c = self.config.commands
        rng = self.rng
        plane = self._task_plane[ids]
        if allow_switch:
            flip = self._task_switch[ids] & (rng.random(ids.size) < c.gait_switch_prob)
            f = ids[flip]
            self.gait[f] = 1 - self.gait[f]
            self.gait_time[f] = 0.0
            self.switched_in[f] = True
        levels = self.tiles.levels
        frac = self.level[ids] / max(levels - 1, 1)
        scale = c.plane_min_scale + (1.0 - c.plane_min_scale) * frac
        cmd = np.zeros((ids.size, 3))
        u = rng.random((ids.size, 5))
        for g, name in enumerate(GAIT_NAMES):
            r = c.ranges[name]
            sel = self.gait[ids] == g
            for k, ax in enumerate(("vx", "vy", "wz")):
                lo, hi = r[ax]
                v = (lo + (hi - lo) * u[:, k]) * scale
                cmd[:, k] = np.where(sel & plane, v, cmd[:, k])
            lo, hi = c.obstacle_vx[name]
            cmd[:, 0] = np.where(sel & ~plane, lo + (hi - lo) * u[:, 3], cmd[:, 0])
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

    def reset_ids(self, ids: np.ndarray) -> None:
        """Reset the robots ``ids``: curriculum level, tile, pose, randomisation, commands."""
        if ids.size == 0:
            return
        rng, cfg, grid = self.rng, self.config, self.tiles
        k = ids.size
        tile = grid.tile_index(self.task[ids], self.level[ids])
        origin, spawn = grid.origins[tile], grid.spawns[tile]
        plane = self._task_plane[ids]
        yaw = np.where(
            plane,
            rng.uniform(-np.pi, np.pi, k),
            rng.uniform(-OBSTACLE_YAW_NOISE, OBSTACLE_YAW_NOISE, k),
        )
        s = np.tile(self._template, (k, 1))
        s[:, 1] = origin[:, 0] + spawn[:, 0]
        s[:, 2] = origin[:, 1] + spawn[:, 1] + rng.uniform(-SPAWN_Y_NOISE, SPAWN_Y_NOISE, k)
        s[:, 3] = spawn[:, 2] + self._spawn_z
        s[:, 4], s[:, 5], s[:, 6], s[:, 7] = np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)
        q = self.default_q + rng.uniform(-SPAWN_JOINT_NOISE, SPAWN_JOINT_NOISE, (k, 12))
        p_up = self._task_upright[ids]
        if np.any(p_up > 0):  # no draw otherwise: task sets without it keep their random stream
            up = rng.random(k) < p_up
            lo = self._task_pitch_min[ids]
            if np.any(lo[up] < np.pi / 2):  # part-way up: one more draw, only where configured
                pitch = lo + (np.pi / 2 - lo) * rng.random(k)
            else:
                pitch = np.full(k, np.pi / 2)
            if up.any():
                frac = (pitch[up] / (np.pi / 2))[:, None]
                q[up] += frac * (UPRIGHT_POSE - self.default_q)
                s[up, 3] = spawn[up, 2] + np.interp(pitch[up], self._pitch_grid, self._pitch_z)
                yaw_q = np.stack([np.cos(yaw[up] / 2), 0 * yaw[up], 0 * yaw[up],
                                  np.sin(yaw[up] / 2)], axis=1)  # fmt: skip
                half = -pitch[up] / 2  # nose up: a negative rotation about the body y axis
                pitch_q = np.stack([np.cos(half), 0 * half, np.sin(half), 0 * half], axis=1)
                s[up, 4:8] = _quat_mul_batch(yaw_q, pitch_q)
        s[:, self._jq] = np.clip(q, self.q_min, self.q_max)
        s[:, self._qvel0 :] = 0.0
        self.state[ids] = s
        self.spawn_x[ids] = spawn[:, 0]
        for i in ids.tolist():
            p = self.randomizer.draw(rng)
            self.randomizer.apply(self.models[i], p)
            self._warp_models_stale = True
            self.friction[i] = p.friction
            self.motor_strength[i] = p.motor_strength
            self.kp_eff[i], self.kd_eff[i] = p.gains(self.control.kp, self.control.kd)
            self.latency[i] = p.latency
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
        self.push_timer[ids] = rng.uniform(0.0, interval, k) if interval > 0 else np.inf
        self._sample_commands(ids, allow_switch=False)

    def reset(self) -> EnvStep:
        """Reset every robot (levels drawn from 0..init_max_level) and observe."""
        n = self.num_envs
        self.level[:] = self.rng.integers(0, self.config.terrain.init_max_level + 1, n)
        self.reset_ids(np.arange(n))
        self._initialised = True
        self._update_heading_commands(self._rotation(self.state))
        obs = self._observe(self.state, self._last_sens)
        z = np.zeros(n)
        return self._pack(obs, z, np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool), {}, {})

    def set_commands(self, command: np.ndarray) -> None:
        """Command every robot (N, 3) (vx, vy [m/s] heading frame, wz [rad/s]) from now on, until
        the next resample (evaluation: set ``commands.resampling_time_s`` beyond the run)."""
        command = np.asarray(command, dtype=np.float64)
        if command.shape != (self.num_envs, 3) or not np.isfinite(command).all():
            raise ValueError(f"command must be finite, shape ({self.num_envs}, 3)")
        self.command[:] = command

    def base_heading_velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """Now: (N, 3) base velocity in the heading frame and (N,) yaw rate, as rewarded."""
        s = self.state
        v = s[:, self._qvel0 : self._qvel0 + 3]
        w = s[:, self._qvel0 + 3 : self._qvel0 + 6]
        return heading_velocity(self._rotation(s), v, w, self.gait)

    def observe(self) -> EnvStep:
        """The observation of the current state (zero reward, nothing done)."""
        n = self.num_envs
        obs = self._observe(self.state, self._last_sens)
        z = np.zeros(n, bool)
        return self._pack(obs, np.zeros(n), z, z, z, {}, {})

    # ------------------------------------------------------------------ observation
    def _rotation(self, state: np.ndarray) -> np.ndarray:
        return quat_to_matrix(state[:, self._qpos0 + 3 : self._qpos0 + 7])

    def _update_heading_commands(self, rot: np.ndarray) -> None:
        obstacle = ~self._task_plane & ~self._task_still
        if not obstacle.any():
            return
        c = self.config.commands
        err = wrap_angle(-heading_yaw(rot, self.gait))
        for g, name in enumerate(GAIT_NAMES):
            lo, hi = c.ranges[name]["wz"]
            sel = obstacle & (self.gait == g)
            self.command[sel, 2] = np.clip(c.heading_gain * err[sel], lo, hi)

    def _observe(self, state: np.ndarray, sens: np.ndarray) -> dict[str, np.ndarray]:
        q = state[:, self._jq]
        dq = state[:, self._jv]
        quat = state[:, self._qpos0 + 3 : self._qpos0 + 7]
        w_body = state[:, self._qvel0 + 3 : self._qvel0 + 6]
        proprio = build_proprio(
            self.obs_spec,
            quat_wxyz=torch.from_numpy(quat),
            base_ang_vel=torch.from_numpy(w_body),
            joint_pos_rel=torch.from_numpy(q - self.default_q),
            joint_vel=torch.from_numpy(dq),
            last_action=torch.from_numpy(self.last_action),
        ).numpy()
        clean = proprio.copy()
        if self._noise_amp.any():
            proprio = proprio + self._noise_amp * self.rng.uniform(-1.0, 1.0, proprio.shape)
        rot = self._rotation(state)
        v_body = np.einsum("nji,nj->ni", rot, state[:, self._qvel0 : self._qvel0 + 3])
        explicit = np.concatenate([v_body, self.friction[:, None]], axis=1)
        links = -sens[:, self.link_adr].reshape(len(state), IMPLICIT_DIM)
        return {
            "proprio": proprio,
            "proprio_clean": clean,
            "explicit": explicit,
            "implicit": links * self.config.implicit_scale,
        }

    def proprio_clean(self) -> torch.Tensor:
        """The current proprioception without observation noise (the parity test's input)."""
        return torch.from_numpy(self._observe(self.state, self._last_sens)["proprio_clean"])

    def _pack(
        self,
        obs: dict[str, np.ndarray],
        reward: np.ndarray,
        done: np.ndarray,
        time_out: np.ndarray,
        term: np.ndarray,
        terms: dict[str, np.ndarray],
        episode: dict[str, float],
    ) -> EnvStep:
        f32 = torch.float32
        command = build_command(
            self.obs_spec, torch.from_numpy(self.command), torch.from_numpy(self.gait)
        )
        levels = {
            name: float(self.level[self.task == t].mean()) if (self.task == t).any() else 0.0
            for t, name in enumerate(self.task_names)
        }
        infos = {
            "reward_terms": {k: torch.from_numpy(v).to(f32) for k, v in terms.items()},
            "terminated": torch.from_numpy(term.copy()),
            "task": torch.from_numpy(self.task.copy()),
            "level": torch.from_numpy(self.level.copy()),
            "gait": torch.from_numpy(self.gait.copy()),
            "curriculum": levels,
            "episode": episode,
        }
        return EnvStep(
            proprio=torch.from_numpy(obs["proprio"]).to(f32),
            privileged_explicit=torch.from_numpy(obs["explicit"]).to(f32),
            privileged_implicit=torch.from_numpy(obs["implicit"]).to(f32),
            command=command.to(f32),
            reward=torch.from_numpy(reward).to(f32),
            done=torch.from_numpy(done.copy()),
            time_out=torch.from_numpy(time_out.copy()),
            infos=infos,
        )

    # ------------------------------------------------------------------ the step
    def step(self, actions: torch.Tensor | np.ndarray) -> EnvStep:
        """One control step for every robot; see the module docstring."""
        if not self._initialised:
            raise RuntimeError("call reset() before step()")
        cfg, n = self.config, self.num_envs
        a = actions.detach().cpu().numpy() if isinstance(actions, torch.Tensor) else actions
        a = np.asarray(a, dtype=np.float64)
        if a.shape != (n, 12):
            raise ValueError(f"actions must have shape ({n}, 12), got {a.shape}")
        clip = self.control.action_clip
        a = np.clip(np.nan_to_num(a, nan=0.0), -clip, clip)
        # the controller core's target law: its command guard clamps every target to the joint's
        # range plus a margin before it reaches a motor, so training clamps them too (a policy
        # that learnt to stand up with calf targets 1.3 rad past the range fell on the robot)
        target = clamp_targets(self.default_q + self.control.action_scale * a)

        # control schedule: the previous target until the latency has passed
        late = self._sub < self.latency[:, None, None]
        targets = np.where(late, self.prev_target[:, None, :], target[:, None, :])
        self._ctrl[:, :, self.idx.ctrl] = targets

        # pushes
        self.push_timer -= self.dt
        due = np.flatnonzero(self.push_timer <= 0.0)
        if due.size:
            v = self.randomizer.push_velocity(self.rng, due.size)
            self.state[due, self._qvel0 : self._qvel0 + 2] += v
            self.push_timer[due] = cfg.randomization.push_interval_s

        start = self.state.copy()
        self.physics_step(self._ctrl)
        out, sens = self._out_state, self._out_sens
        # a diverged robot: non-finite values, or MuJoCo's own reset of an unstable MjData
        # (its time restarts); it terminates and is replaced by the spawn template until reset
        expected_time = start[:, 0] + self.substeps * cfg.timestep
        finite = np.isfinite(out).all(axis=(1, 2)) & np.isfinite(sens).all(axis=(1, 2))
        finite &= np.abs(out[:, -1, 0] - expected_time) < 1e-6
        if not finite.all():
            out[~finite] = self._template
            sens[~finite] = 0.0
            start[~finite] = self._template
        new = out[:, -1]
        self.state[:] = new
        sens_last = sens[:, -1]
        self._last_sens[:] = sens_last

        # substep quantities (state at the start of each substep)
        sub_states = np.concatenate([start[:, None], out[:, :-1]], axis=1)
        q_sub = sub_states[:, :, self._jq]
        dq_sub = sub_states[:, :, self._jv]
        kp, kd = self.kp_eff[:, None, :], self.kd_eff[:, None, :]
        tau_des = kp * (targets - q_sub) - kd * dq_sub
        tau = np.clip(tau_des, -self.torque_limit, self.torque_limit)

        # the new state
        q, dq = new[:, self._jq], new[:, self._jv]
        rot = self._rotation(new)
        gravity = -rot[:, 2, :]
        v_world = new[:, self._qvel0 : self._qvel0 + 3]
        w_body = new[:, self._qvel0 + 3 : self._qvel0 + 6]
        v_head, yaw_rate = heading_velocity(rot, v_world, w_body, self.gait)
        link_force = -sens_last[:, self.link_adr]
        foot_z = -sens_last[:, self.foot_adr[:, 2]]
        calf_z = link_force[:, list(CALF_LINKS), 2] - foot_z
        tile = self.tile
        origin = self.tiles.origins[tile]
        x_rel = new[:, 1] - origin[:, 0]
        y_rel = new[:, 2] - origin[:, 1]
        height = new[:, 3] - self.tiles.height(tile, x_rel)
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
        landed = np.where(touch & (self.feet_air > self.dt), self.feet_air, 0.0)
        self.feet_air[touch] = 0.0
        self.feet_contact = np.where(touch, self.feet_contact + self.dt, 0.0)
        self.last_contact = contact

        inputs = rw.RewardInputs(
            command=self.command.copy(),
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
            feet_mode_time=np.where(touch, self.feet_contact, self.feet_air),
            feet_in_contact=touch,
        )
        reward, terms = rw.compute_rewards(inputs, self.gait, cfg.rewards, self.dt)
        self.episode_return += reward
        # the plane curriculum's tracking, with each gait's own sigma
        sigma = np.where(
            self.gait == BIPEDAL, rw.bipedal_sigma(cfg.rewards), cfg.rewards.tracking_sigma
        )
        self.tracking_sum += rw.tracking_lin_vel(inputs, cfg.rewards, sigma)

        self.last_action = a
        self.prev_target = target
        self.last_dq = dq.copy()

        # resets, with the curriculum deciding the next level
        ids = np.flatnonzero(done)
        episode: dict[str, float] = {"count": float(ids.size)}
        if ids.size:
            episode["mean_return"] = float(self.episode_return[ids].mean())
            episode["mean_length_s"] = float(self.episode_time[ids].mean())
            if cfg.curriculum.enabled:
                distance = x_rel[ids] - self.spawn_x[ids]
                commanded = np.abs(self.command[ids, 0]) * self.episode_time[ids]
                steps = np.maximum(np.round(self.episode_time[ids] / self.dt), 1.0)
                self.level[ids], _, _ = update_levels(
                    self.level[ids],
                    self._task_plane[ids],
                    distance,
                    self.tiles.course[tile[ids]],
                    commanded,
                    time_out[ids],
                    self.tiles.levels,
                    cfg.curriculum,
                    self.rng,
                    tracking=self.tracking_sum[ids] / steps,
                )
            self.reset_ids(ids)

        # command resampling (plane tiles may switch gait) and heading hold
        self.command_timer -= self.dt
        self.command_timer[ids] = cfg.commands.resampling_time_s
        self._sample_commands(np.flatnonzero(self.command_timer <= 0.0), allow_switch=True)
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
