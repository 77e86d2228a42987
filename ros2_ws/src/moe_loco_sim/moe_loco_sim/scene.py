"""A Go2 on a terrain: compose :mod:`go2_model` and :mod:`terrain` into one MuJoCo model.

``build_scene("mixed", "menagerie")`` gives the spec, the compiled model, the robot's
:class:`~moe_loco_sim.go2_model.Go2Indices` and the terrain description. One robot per model:
training steps many ``MjData`` of the same model (``mujoco.rollout``); the composable pieces
(:func:`~moe_loco_sim.go2_model.add_go2`, :func:`~moe_loco_sim.terrain.add_terrain`, both with a
name prefix and an origin) are there for other compositions.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from moe_loco_controller.core import go2
from moe_loco_sim.go2_model import (
    DECLARATION_LEGS,
    DEFAULT_TIMESTEP,
    ContactPreset,
    Go2Indices,
    add_go2,
    apply_options,
    contact_preset,
    go2_spec,
    standing_height,
)
from moe_loco_sim.terrain import Terrain, TrackConfig, add_terrain, build_terrain

SPAWN_CLEARANCE = 0.02
"""Gap between the lowest foot and the ground when the robot is placed at its spawn point [m]."""


@functools.lru_cache(maxsize=32)
def _standing_height(pose: tuple[float, ...]) -> float:
    model = go2_spec().compile()
    return standing_height(model, Go2Indices.from_model(model), np.array(pose))


def pose_height(joint_pos: Sequence[float] = tuple(go2.DEFAULT_STANDING_POSE)) -> float:
    """Base height [m] at which a level robot in ``joint_pos`` (SDK order) touches flat ground."""
    return _standing_height(tuple(float(v) for v in joint_pos))


@dataclass
class Go2Scene:
    """One Go2 on one terrain, compiled."""

    spec: mujoco.MjSpec
    model: mujoco.MjModel
    idx: Go2Indices
    terrain: Terrain
    preset: ContactPreset

    def spawn_base_pos(
        self,
        joint_pos: Sequence[float] = tuple(go2.DEFAULT_STANDING_POSE),
        clearance: float = SPAWN_CLEARANCE,
    ) -> np.ndarray:
        """Base position at the terrain's spawn point with the feet ``clearance`` above it."""
        x, y, z = self.terrain.description.spawn
        return np.array([x, y, z + pose_height(joint_pos) + clearance])

    def reset(
        self,
        data: mujoco.MjData,
        joint_pos: Sequence[float] = tuple(go2.DEFAULT_STANDING_POSE),
        base_pos: Sequence[float] | None = None,
        base_quat: Sequence[float] = (1.0, 0.0, 0.0, 0.0),
    ) -> None:
        """Reset ``data`` and place the robot (default: standing pose at the spawn point)."""
        mujoco.mj_resetData(self.model, data)
        pos = self.spawn_base_pos(joint_pos) if base_pos is None else base_pos
        self.idx.set_pose(data, np.asarray(joint_pos, dtype=np.float64), pos, base_quat)
        if self.idx.actuation == "pd":
            self.idx.set_target(data, np.asarray(joint_pos, dtype=np.float64))
        mujoco.mj_forward(self.model, data)

    def make_data(
        self, joint_pos: Sequence[float] = tuple(go2.DEFAULT_STANDING_POSE)
    ) -> mujoco.MjData:
        """A fresh ``MjData`` with the robot placed by :meth:`reset`."""
        data = mujoco.MjData(self.model)
        self.reset(data, joint_pos)
        return data


def build_scene_spec(
    terrain: str | TrackConfig | Terrain = "plane",
    contact: str | ContactPreset = "cheap",
    timestep: float = DEFAULT_TIMESTEP,
    actuation: str = "motor",
) -> tuple[mujoco.MjSpec, Terrain]:
    """The uncompiled spec (options, light, terrain, one Go2 at the spawn point) and its terrain."""
    preset = contact_preset(contact)
    terr = terrain if isinstance(terrain, Terrain) else build_terrain(terrain)
    spec = mujoco.MjSpec()
    spec.modelname = f"go2_{terr.description.name}"
    apply_options(spec, preset, timestep)
    spec.worldbody.add_light(
        name="sun",
        pos=[0, 0, 5],
        dir=[0.3, 0.2, -1],
        type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
        diffuse=[0.7, 0.7, 0.7],
        castshadow=False,
    )
    add_terrain(spec, terr)
    x, y, z = terr.description.spawn
    pose = tuple(go2.DEFAULT_STANDING_POSE)
    base_z = z + pose_height(pose) + SPAWN_CLEARANCE
    base = add_go2(spec, preset, pos=(x, y, base_z), actuation=actuation)
    base.add_camera(
        name="track",
        mode=mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM,
        pos=[0.0, -2.0, 0.35],
        quat=[0.7660444, 0.6427876, 0.0, 0.0],  # 80 deg about x: looks along +y, slightly down
    )
    # Keyframe "home": standing pose at the spawn point (qpos of the robot's own joints only: the
    # terrain has none, so qpos is exactly the free joint then the 12 hinges in declaration order;
    # actuators are declared in the same order). ctrl: zero torque, or the pose as PD targets.
    by_name = dict(zip(go2.JOINT_NAMES, pose, strict=True))
    declared = [by_name[f"{leg}_{k}_joint"] for leg in DECLARATION_LEGS for k in go2.JOINT_KINDS]
    spec.add_key(
        name="home",
        qpos=[x, y, base_z, 1.0, 0.0, 0.0, 0.0, *declared],
        ctrl=declared if actuation == "pd" else [0.0] * 12,
    )
    return spec, terr


def build_scene(
    terrain: str | TrackConfig | Terrain = "plane",
    contact: str | ContactPreset = "cheap",
    timestep: float = DEFAULT_TIMESTEP,
    actuation: str = "motor",
) -> Go2Scene:
    """Compile a Go2 on ``terrain`` (a name, a track config or a built terrain) with ``contact``.

    ``actuation``: ``motor`` (ctrl = torque; the caller applies PD) or ``pd`` (ctrl = joint target
    of in-engine PD servos with the deployment gains, for stepping many substeps in C).
    """
    spec, terr = build_scene_spec(terrain, contact, timestep, actuation)
    model = spec.compile()
    idx = Go2Indices.from_model(model)
    return Go2Scene(spec=spec, model=model, idx=idx, terrain=terr, preset=contact_preset(contact))
