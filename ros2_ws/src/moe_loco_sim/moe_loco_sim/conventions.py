"""How a simulator behaves at the robot's wire, beyond the physics: ours (``go2``, as the robot)
or Unitree's own MuJoCo simulator (``unitree_mujoco``), which a Go2 owner runs before the robot.

``unitree_mujoco``'s ``simulate_python`` bridge differs from the robot in three ways that change
what a controller sees or must survive:

- it publishes ``rt/lowstate`` once per physics step (200 Hz at its 5 ms step) with ``crc`` 0;
- its LowCmd_ handler computes the PD torque from MuJoCo's sensor values, which ``mj_step``
  computed before it integrated, and holds it over the next step: the torque over
  ``[t, t + dt]`` comes from the joint state at ``t - dt`` (a one-step-delayed PD);
- its ``unitree_robots/go2`` model has joint damping 0.1 N m s/rad (Menagerie's: 2), so little
  of the damping is MuJoCo's implicit kind: under the delay, Kp 60 / Kd 5 chatters (commanded
  torques beyond the motors' limits, joint speeds above 20 rad/s) and a safety fault trips.

The sim bridge (``moe-loco-sim --convention``) and the lockstep harness take a convention by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from moe_loco_sim.scene import Go2Scene


@dataclass(frozen=True)
class SimConvention:
    name: str
    lowstate_crc: bool
    """True: LowState_ carries its CRC; False: the field is 0."""
    lowstate_at_physics_rate: bool
    """True: one LowState_ per physics step, whatever rate is asked for."""
    pd_delay_steps: int
    """Physics steps between the joint state a PD torque is computed from and its application."""
    joint_damping: float | None
    """[N m s/rad] every joint's damping; None keeps the model's (Menagerie's)."""

    def apply(self, scene: Go2Scene) -> Go2Scene:
        """``scene`` with this convention's joint damping (its model is changed in place)."""
        if self.joint_damping is not None:
            scene.model.dof_damping[scene.idx.qvel] = self.joint_damping
        return scene


CONVENTIONS: dict[str, SimConvention] = {
    "go2": SimConvention("go2", True, False, 0, None),
    "unitree_mujoco": SimConvention("unitree_mujoco", False, True, 1, 0.1),
}


def convention(name: str) -> SimConvention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ValueError(f"unknown convention {name!r}; known: {sorted(CONVENTIONS)}") from None
