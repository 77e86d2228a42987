"""The physics of the training environment on MuJoCo Warp (``mujoco-warp``, NVIDIA Warp): the
same MJCF model as the C backend, all robots stepped as the worlds of one batched ``mjw.Data``
on one Warp device (a GPU, or the CPU for tests), states and sensors handed over as torch
tensors on that device (Warp's torch interop, no copy).

:meth:`WarpPhysics.rollout` mirrors what :meth:`MultitaskEnv.physics_step` gets from
``mujoco.rollout``: for ``(N, substeps, nu)`` controls, every substep's full-physics state after
the step (time, qpos, qvel; ``mjSTATE_FULLPHYSICS`` layout) and the sensor values MuJoCo computed
in that step (before integrating), so the environment's observation, reward, termination and
curriculum code is the one code for both backends.

Why Warp and not IsaacGym: IsaacGym Preview 4 supports Python 3.6-3.8 only and is on no package
registry; MuJoCo Warp runs the MJCF the CPU path runs (one Go2 model, one terrain builder) and
runs on the CPU too, which lets CI test it (slowly: a cold kernel cache costs ~2 min of
compilation on this machine).

Domain randomisation: MuJoCo Warp indexes its batchable model fields (``(*, n)`` in its types)
by ``world % shape[0]``; :meth:`WarpPhysics.set_model_fields` gives those the randomiser writes
(and the mass-dependent constants ``mj_setConst`` derives from them) one row per world, from the
robots' own C model copies: one source of truth for both backends.

The environment (``env.backend: warp``) keeps its arrays as torch tensors on this device and
runs its one task code on them (``env.arrays``): states, sensors, observations, rewards and dones
never cross to the host. What does cross, at a reset only: the reset robots' indices to the
host, and their randomised model rows (friction, masses, gains, drawn into their C model copies)
back to the device (:meth:`set_model_fields` with ``rows``).
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch


def warp_available() -> str | None:
    """None if ``warp`` and ``mujoco_warp`` import, else the reason."""
    try:
        import mujoco_warp  # noqa: F401
        import warp  # noqa: F401
    except Exception as e:  # ImportError, or a broken install
        return f"mujoco_warp / warp-lang not importable: {e}"
    return None


class WarpPhysics:
    """``nworld`` copies of ``model`` on Warp device ``device`` (``"cpu"`` or ``"cuda:0"``)."""

    def __init__(
        self,
        model: mujoco.MjModel,
        nworld: int,
        device: str = "cpu",
        nconmax: int | None = None,
        njmax: int | None = None,
    ) -> None:
        import mujoco_warp as mjw
        import warp as wp

        if nworld < 1:
            raise ValueError(f"nworld must be >= 1, got {nworld}")
        self._wp, self._mjw = wp, mjw
        wp.config.quiet = True
        self.model = model
        self.nworld = nworld
        self.device = device
        self.kind = mujoco.mjtState.mjSTATE_FULLPHYSICS
        self.nstate = mujoco.mj_stateSize(model, self.kind)
        if self.nstate != 1 + model.nq + model.nv:
            raise ValueError("unexpected full-physics state layout (time, qpos, qvel)")
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        # contacts and constraint rows per world: the C solver's buffers grow as needed, Warp's
        # are fixed; 4 feet + a body on stairs stay far below these
        nconmax = nconmax or 48 * nworld
        njmax = njmax or 6 * nconmax
        with wp.ScopedDevice(device):
            self.mjw_model = mjw.put_model(model)
            self.mjw_data = mjw.put_data(model, data, nworld=nworld, nconmax=nconmax, njmax=njmax)
        d = self.mjw_data
        self._time = wp.to_torch(d.time)
        self._qpos = wp.to_torch(d.qpos)
        self._qvel = wp.to_torch(d.qvel)
        self._ctrl = wp.to_torch(d.ctrl)
        self._sensordata = wp.to_torch(d.sensordata)
        self._act = wp.to_torch(d.act) if model.na else None
        self._qacc_warmstart = wp.to_torch(d.qacc_warmstart)
        self.torch_device = self._qpos.device
        self._per_world: set[str] = set()
        """Model fields that hold one row per world (after the first upload)."""

    BATCHED_FIELDS = (
        "geom_friction",
        "body_mass",
        "body_ipos",
        "actuator_gainprm",
        "actuator_biasprm",
        "body_subtreemass",
        "body_invweight0",
        "dof_invweight0",
    )
    """What the randomiser writes into a robot's model copy, and what ``mj_setConst`` derives."""

    def set_model_fields(
        self,
        models: list[mujoco.MjModel],
        fields: tuple[str, ...] = BATCHED_FIELDS,
        rows: list[int] | None = None,
    ) -> None:
        """Per-world values of ``fields`` from ``models`` (one C model copy per world): all
        worlds, or only ``rows`` (the robots a reset randomised) once every field is per world."""
        if len(models) != self.nworld:
            raise ValueError(f"need {self.nworld} models, got {len(models)}")
        wp = self._wp
        if rows is not None and not set(fields) <= self._per_world:
            rows = None  # the first upload gives every field its per-world rows
        for name in fields:
            cur = getattr(self.mjw_model, name)
            if rows is None:
                values = np.stack([np.asarray(getattr(m, name)) for m in models])
                arr = wp.array(values.astype(np.float32), dtype=cur.dtype, device=self.device)
                setattr(self.mjw_model, name, arr)
                self._per_world.add(name)
            elif rows:
                values = np.stack([np.asarray(getattr(models[i], name)) for i in rows])
                view = wp.to_torch(cur)
                index = torch.as_tensor(rows, device=view.device)
                view[index] = torch.from_numpy(values.astype(np.float32)).to(view.device)

    def set_state(self, state: torch.Tensor | np.ndarray) -> None:
        """Every world's state from ``(nworld, nstate)`` (time, qpos, qvel), velocities of the
        solver's warm start cleared (as ``mj_setState`` leaves a fresh ``MjData``)."""
        s = torch.as_tensor(state, dtype=torch.float64, device=self.torch_device)
        if tuple(s.shape) != (self.nworld, self.nstate):
            raise ValueError(f"state must be ({self.nworld}, {self.nstate}), got {tuple(s.shape)}")
        nq = self.model.nq
        self._time.copy_(s[:, 0].to(self._time.dtype))
        self._qpos.copy_(s[:, 1 : 1 + nq].to(self._qpos.dtype))
        self._qvel.copy_(s[:, 1 + nq :].to(self._qvel.dtype))
        self._qacc_warmstart.zero_()

    def state(self) -> torch.Tensor:
        """``(nworld, nstate)`` float64 on the device: time, qpos, qvel."""
        return torch.cat(
            [self._time[:, None].double(), self._qpos.double(), self._qvel.double()], dim=1
        )

    def _scope(self) -> object:
        """Warp's kernels on this device; on CUDA on torch's current stream there, so that the
        torch code reading and writing the shared tensors is ordered with them (Warp's
        documented interop: ``stream_from_torch``), whatever stream the trainer runs on."""
        wp = self._wp
        if self.torch_device.type == "cuda":
            return wp.ScopedStream(wp.stream_from_torch(self.torch_device))
        return wp.ScopedDevice(self.device)

    def rollout(self, ctrl: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Step every world ``ctrl.shape[1]`` times under ``ctrl`` (nworld, substeps, nu).

        Returns (states (nworld, substeps, nstate), sensordata (nworld, substeps, nsensordata)),
        float64 on the device, with ``mujoco.rollout``'s meaning per substep."""
        c = torch.as_tensor(ctrl, dtype=self._ctrl.dtype, device=self.torch_device)
        if c.dim() != 3 or c.shape[0] != self.nworld or c.shape[2] != self.model.nu:
            raise ValueError(
                f"ctrl must be ({self.nworld}, substeps, {self.model.nu}), got {tuple(c.shape)}"
            )
        steps = c.shape[1]
        states = torch.empty(self.nworld, steps, self.nstate, dtype=torch.float64,
                             device=self.torch_device)  # fmt: skip
        sens = torch.empty(self.nworld, steps, self.model.nsensordata, dtype=torch.float64,
                           device=self.torch_device)  # fmt: skip
        with self._scope():
            for k in range(steps):
                self._ctrl.copy_(c[:, k])
                self._mjw.step(self.mjw_model, self.mjw_data)
                states[:, k] = self.state()
                sens[:, k] = self._sensordata.double()
        return states, sens
