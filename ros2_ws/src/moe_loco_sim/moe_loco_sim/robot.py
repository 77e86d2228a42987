"""One simulated Go2 stepped at the physics rate, its motors applying the PD law of the latest
command at every physics step. Shared by the DDS bridge and the lockstep harness.

A physics step is split the way a sampled motor controller works (``mj_step1`` / ``mj_step2``,
exact for MuJoCo's Euler integrator): :meth:`SimRobot.begin_step` brings positions, velocities
and their sensors to the current instant, when :meth:`SimRobot.frame` reads what the robot reports;
:meth:`SimRobot.end_step` computes the motors' torques from that same state and the latest command
(zero-order hold over the step), then integrates. So the torque applied over ``[t, t + dt]`` comes
from the state at ``t``, and a command computed from the frame at ``t`` acts from ``t`` on.

``pd_delay_steps=1`` is Unitree's own simulator (``unitree_mujoco``'s ``simulate_python``): it
computes a LowCmd_'s torque from MuJoCo's sensor values, which ``mj_step`` computed before it
integrated, so the torque over ``[t, t + dt]`` comes from the joint state at ``t - dt``. A PD loop
whose damping is stable at zero delay can chatter under this one-step delay.
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from moe_loco_controller.core import go2
from moe_loco_controller.core.robot_state import JointCommand
from moe_loco_sim.lowlevel_state import SimFrame, read_frame
from moe_loco_sim.motor import MotorLaw
from moe_loco_sim.scene import Go2Scene

LIE_POSE = np.array([0.0, 1.36, -2.65] * 4)
"""Lying down, legs folded (Unitree's Go2 stand example's first pose), SDK order [rad]."""

SPAWN_POSES: dict[str, np.ndarray] = {
    "lie": LIE_POSE,
    "stand": go2.DEFAULT_STANDING_POSE,
}
"""Named start poses: ``lie`` (on the ground, as a robot is switched on) or ``stand``."""


def spawn_pose(pose: str | Sequence[float]) -> np.ndarray:
    """A start pose by name (:data:`SPAWN_POSES`) or as 12 joint positions in SDK order."""
    if isinstance(pose, str):
        try:
            return SPAWN_POSES[pose].copy()
        except KeyError:
            raise ValueError(f"unknown spawn pose {pose!r}; known: {sorted(SPAWN_POSES)}") from None
    q = np.asarray(pose, dtype=np.float64)
    if q.shape != (go2.NUM_MOTORS,):
        raise ValueError(f"a spawn pose needs 12 joint positions, got shape {q.shape}")
    return q


class SimRobot:
    """A Go2 on a :class:`~moe_loco_sim.scene.Go2Scene` (motor actuation: ctrl = torque)."""

    def __init__(self, scene: Go2Scene, pd_delay_steps: int = 0) -> None:
        if pd_delay_steps not in (0, 1):
            raise ValueError(f"pd_delay_steps must be 0 or 1, got {pd_delay_steps}")
        if scene.idx.actuation != "motor":
            raise ValueError("SimRobot applies the motor law itself: build the scene with motors")
        self.scene = scene
        self.model = scene.model
        self.idx = scene.idx
        self.data = mujoco.MjData(self.model)
        self.timestep = float(self.model.opt.timestep)
        self.command = JointCommand.zero_torque()
        """The command the motors follow (held until the next one)."""
        self._law = MotorLaw(self.command, self.idx.torque_limit)
        self.tau = np.zeros(go2.NUM_MOTORS)
        """The torques applied over the last physics step [N m], SDK order."""
        self.steps = 0
        self.pd_delay_steps = pd_delay_steps
        """Physics steps between the joint state a torque is computed from and its application."""
        self._pd_state: tuple[np.ndarray, np.ndarray] | None = None
        self.reset()

    def reset(
        self,
        pose: str | Sequence[float] = "lie",
        joint_noise: float = 0.0,
        rng: np.random.Generator | None = None,
        base_pos: Sequence[float] | None = None,
        base_quat: Sequence[float] = (1.0, 0.0, 0.0, 0.0),
    ) -> None:
        """Place the robot in ``pose`` (plus Gaussian ``joint_noise`` [rad] drawn from ``rng``,
        clipped to the joint ranges) at the terrain's spawn point, feet just above the ground;
        motors idle."""
        q = spawn_pose(pose)
        if joint_noise > 0.0:
            if rng is None:
                raise ValueError("joint_noise needs an rng (np.random.default_rng(seed))")
            q = np.clip(q + rng.normal(0.0, joint_noise, q.shape), go2.JOINT_LOWER, go2.JOINT_UPPER)
        self.scene.reset(self.data, q, base_pos, base_quat)
        self.command = JointCommand.zero_torque()
        self._law = MotorLaw(self.command, self.idx.torque_limit)
        self.tau = np.zeros(go2.NUM_MOTORS)
        self.steps = 0
        self._pd_state = None

    # ------------------------------------------------------------------ stepping
    @property
    def time(self) -> float:
        return float(self.data.time)

    def begin_step(self) -> None:
        """Positions, velocities and their sensors at the current instant (``mj_step1``)."""
        mujoco.mj_step1(self.model, self.data)

    def frame(self) -> SimFrame:
        """What the robot senses now (call between :meth:`begin_step` and :meth:`end_step`)."""
        return read_frame(self.data, self.idx, self.tau)

    def end_step(self, command: JointCommand | None = None) -> None:
        """Motor torques from the current state and ``command`` (else the held one), integrate."""
        if command is not None:
            self.command = command
        d, idx = self.data, self.idx
        if self._law.command is not self.command:
            self._law = MotorLaw(self.command, idx.torque_limit)
        q, dq = d.qpos[idx.qpos], d.qvel[idx.qvel]
        if self.pd_delay_steps:
            # the previous step's joint state (the first step has none older than its own)
            held = self._pd_state if self._pd_state is not None else (q.copy(), dq.copy())
            self._pd_state = (q.copy(), dq.copy())
            q, dq = held
        self.tau = self._law.torque(q, dq)
        d.ctrl[idx.ctrl] = self.tau
        mujoco.mj_step2(self.model, d)
        self.steps += 1

    def step(self, command: JointCommand | None = None) -> None:
        """One whole physics step under ``command`` (else the held one)."""
        self.begin_step()
        self.end_step(command)

    # ------------------------------------------------------------------ disturbances and truth
    def push(
        self, force: Sequence[float] = (0.0, 0.0, 0.0), torque: Sequence[float] = (0.0, 0.0, 0.0)
    ) -> None:
        """Apply an external force [N] and torque [N m] (world frame) at the base's centre of
        mass until changed (``push()`` clears it)."""
        self.data.xfrc_applied[self.idx.base_body] = [*force, *torque]

    def base_pos(self) -> np.ndarray:
        return self.idx.base_pos(self.data)

    def base_quat(self) -> np.ndarray:
        return self.idx.base_quat(self.data)

    def base_lin_vel_world(self) -> np.ndarray:
        """Base linear velocity in the world frame [m/s] (ground truth)."""
        a = self.idx.base_qvel
        return self.data.qvel[a : a + 3].copy()

    def base_rotation(self) -> np.ndarray:
        """Base orientation as a 3x3 rotation matrix (base frame -> world), from ``qpos``."""
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, self.base_quat())
        return rot.reshape(3, 3)

    def base_lin_vel_body(self) -> np.ndarray:
        """Base linear velocity in the base frame [m/s] (ground truth)."""
        return self.base_rotation().T @ self.base_lin_vel_world()

    def base_ang_vel_body(self) -> np.ndarray:
        """Base angular velocity in the base frame [rad/s] (ground truth)."""
        a = self.idx.base_qvel
        return self.data.qvel[a + 3 : a + 6].copy()

    def upright(self) -> float:
        """z of the base's z axis in the world: 1 upright, 0 on its side, -1 upside down."""
        _, x, y, _ = self.base_quat()
        return float(1.0 - 2.0 * (x * x + y * y))

    def nose_up(self) -> float:
        """z of the base's x axis in the world: 1 on the rear legs (nose up), 0 level."""
        w, x, y, z = self.base_quat()
        return float(2.0 * (x * z - w * y))

    def joint_pos(self) -> np.ndarray:
        return self.idx.joint_pos(self.data)
