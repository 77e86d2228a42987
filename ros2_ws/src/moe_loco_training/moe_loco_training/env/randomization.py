"""Domain randomisation: per-robot physical parameters and the noise of what the robot senses.

Drawn at every reset (physics) or every step (observation noise), always from the
environment's seeded ``numpy.random.Generator``:

- friction: the foot spheres' sliding friction (their contact priority makes it the ground's);
- added mass and centre-of-mass shift of the base;
- motor strength: per motor, a factor on the PD torque before the torque limit (the servo's
  gain and bias in that robot's model copy);
- PD gains: per motor, factors on Kp and on Kd (a real motor's effective gains are not the
  commanded ones);
- pushes: every ``push_interval_s`` (each robot on its own phase) a random horizontal base
  velocity kick;
- action latency: per episode, a new joint target reaches the motors this many physics
  substeps after the control instant (the previous target holds until then);
- observation noise: uniform, per proprio term, in the term's physical unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from moe_loco_controller.core.policy_metadata import ObservationSpec
from moe_loco_sim.go2_model import Go2Indices
from moe_loco_training.env.config import RandomizationConfig


@dataclass
class RobotParameters:
    """The physical draw of one robot (the environment keeps arrays of these values)."""

    friction: float
    added_mass: float
    com_offset: np.ndarray
    motor_strength: np.ndarray
    latency: int
    kp_factor: np.ndarray | None = None
    kd_factor: np.ndarray | None = None

    def gains(self, kp: float, kd: float) -> tuple[np.ndarray, np.ndarray]:
        """(12,) effective Kp and Kd of the motors (strength and gain factors applied)."""
        kpf = np.ones(12) if self.kp_factor is None else self.kp_factor
        kdf = np.ones(12) if self.kd_factor is None else self.kd_factor
        return kp * kpf * self.motor_strength, kd * kdf * self.motor_strength


MODEL_FIELDS = ("geom_friction", "body_mass", "body_ipos", "actuator_gainprm", "actuator_biasprm")
"""The model fields :meth:`Randomizer.apply` writes into a robot's model copy."""


class Randomizer:
    """Draws parameters and writes them into a robot's model copy (:data:`MODEL_FIELDS`)."""

    def __init__(
        self,
        config: RandomizationConfig,
        model: mujoco.MjModel,
        idx: Go2Indices,
        kp: float,
        kd: float,
        substeps: int,
    ) -> None:
        self.config = config
        self.idx = idx
        self.kp, self.kd = kp, kd
        self.substeps = substeps
        self.base_mass = float(model.body_mass[idx.base_body])
        self.base_ipos = model.body_ipos[idx.base_body].copy()
        self.foot_friction = float(model.geom_friction[idx.foot_geoms[0], 0])
        self._scratch = mujoco.MjData(model)

    def draw(self, rng: np.random.Generator) -> RobotParameters:
        """One robot's parameters (nominal values where randomisation is off)."""
        c = self.config
        on = c.enabled
        friction = float(rng.uniform(*c.friction)) if on and c.friction else self.foot_friction
        mass = float(rng.uniform(*c.added_mass)) if on and c.added_mass else 0.0
        com = (
            rng.uniform(-1.0, 1.0, 3) * np.asarray(c.com_offset)
            if on and c.com_offset
            else np.zeros(3)
        )
        strength = rng.uniform(*c.motor_strength, 12) if on and c.motor_strength else np.ones(12)
        lat = c.action_latency_substeps
        latency = int(rng.integers(lat[0], lat[1] + 1)) if on and lat else 0
        kpf = rng.uniform(*c.kp_factor, 12) if on and c.kp_factor else np.ones(12)
        kdf = rng.uniform(*c.kd_factor, 12) if on and c.kd_factor else np.ones(12)
        return RobotParameters(friction, mass, com, strength, min(latency, self.substeps), kpf, kdf)

    def apply(self, model: mujoco.MjModel, p: RobotParameters) -> None:
        """Write ``p`` into ``model`` (a robot's own copy of the training model)."""
        i = self.idx
        model.geom_friction[i.foot_geoms, 0] = p.friction
        model.body_mass[i.base_body] = self.base_mass + p.added_mass
        model.body_ipos[i.base_body] = self.base_ipos + p.com_offset
        kp, kd = p.gains(self.kp, self.kd)
        model.actuator_gainprm[i.ctrl, 0] = kp
        model.actuator_biasprm[i.ctrl, 1] = -kp
        model.actuator_biasprm[i.ctrl, 2] = -kd
        mujoco.mj_setConst(model, self._scratch)  # mass-dependent constants

    def push_velocity(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, 2) horizontal velocity kicks [m/s]."""
        v = self.config.push_max_vel
        return rng.uniform(-v, v, (n, 2))

    def noise_amplitude(self, spec: ObservationSpec) -> np.ndarray:
        """(proprio_dim,) uniform noise amplitude per proprio column, after the term's scale."""
        c = self.config
        out = np.zeros(spec.proprio_dim)
        if not c.enabled:
            return out
        offsets = spec.offsets("proprio")
        for term in spec.proprio:
            where = offsets[term.name]
            amp = c.obs_noise.get(term.name, 0.0) * c.obs_noise_level
            out[where] = amp * np.asarray(term.scale)
        return out
