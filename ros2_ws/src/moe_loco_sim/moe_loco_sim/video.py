"""Offscreen video of a simulated run: record the trajectory while the sim runs, render it after.

Recording costs the sim nearly nothing (one ``qpos`` copy per video frame, in
:class:`TrajectoryRecorder`); rendering happens afterwards, in its own process, where an OpenGL
backend can be chosen before MuJoCo is imported: ``MUJOCO_GL`` must be set before the first
``import mujoco``, so a process that already imported it cannot switch to OSMesa. On a machine
without a display (CI, these CPU machines) the renderer uses OSMesa (Debian's ``libosmesa6``,
which ``scripts/setup.sh`` installs); elsewhere the default (GLFW/EGL) backend. Frames go to
``ffmpeg`` (the binary that the ``imageio-ffmpeg`` wheel ships) as raw RGB, encoded H.264 in MP4.

    moe-loco-sim --record-trajectory runs/x/trajectory.npz ...   # while the sim runs
    python -m moe_loco_sim.video runs/x/trajectory.npz -o runs/x/run.mp4

The trajectory file (``.npz``) holds ``time`` [s], ``qpos`` (frames x nq) and the scene it was
recorded on (``terrain``, ``contact``, ``timestep``), so the renderer rebuilds the same model.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TRAJECTORY_KEYS = ("time", "qpos", "terrain", "contact", "timestep")


class VideoError(Exception):
    """A trajectory that cannot be rendered, or a renderer that cannot run; names the cause."""


class TrajectoryRecorder:
    """Samples the simulated robot's ``qpos`` at ``fps`` of sim time (call :meth:`sample` after
    every physics step or publish; it keeps a frame only when one is due)."""

    def __init__(
        self, robot: Any, fps: float, terrain: str, contact: str, max_frames: int = 200_000
    ) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.robot = robot
        self.period = 1.0 / float(fps)
        self.meta = {"terrain": terrain, "contact": contact, "timestep": float(robot.timestep)}
        self.max_frames = max_frames
        self.times: list[float] = []
        self.qpos: list[np.ndarray] = []
        self._next = -np.inf
        self._t0 = 0.0

    def sample(self) -> None:
        t = float(self.robot.time)
        if t + 1e-9 < self._next or len(self.times) >= self.max_frames:
            return
        if not self.times:
            self._t0 = t
        self.times.append(t)
        self.qpos.append(np.array(self.robot.data.qpos, dtype=np.float64))
        # the next frame on the grid t0 + k * period (not t + period: no drift)
        self._next = self._t0 + (np.floor((t - self._t0) / self.period + 1e-6) + 1) * self.period

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the trajectory (``.npz``); written whole or not at all (temp file, rename)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".partial.npz")
        np.savez_compressed(
            tmp,
            time=np.asarray(self.times, dtype=np.float64),
            qpos=np.asarray(self.qpos, dtype=np.float64).reshape(len(self.qpos), -1),
            **{k: np.asarray(v) for k, v in self.meta.items()},
        )
        tmp.replace(out)
        return out


@dataclass(frozen=True)
class Trajectory:
    time: np.ndarray
    qpos: np.ndarray
    terrain: str
    contact: str
    timestep: float


def load_trajectory(path: str | os.PathLike[str]) -> Trajectory:
    """Read a trajectory file; a missing, damaged or incomplete one is a :class:`VideoError`."""
    p = Path(path)
    if not p.is_file():
        raise VideoError(f"{p}: no such trajectory file")
    try:
        with np.load(p, allow_pickle=False) as z:
            missing = [k for k in TRAJECTORY_KEYS if k not in z.files]
            if missing:
                raise VideoError(f"{p}: not a trajectory file: it lacks {', '.join(missing)}")
            t = np.asarray(z["time"], dtype=np.float64)
            qpos = np.asarray(z["qpos"], dtype=np.float64)
            traj = Trajectory(t, qpos, str(z["terrain"]), str(z["contact"]), float(z["timestep"]))
    except VideoError:
        raise
    except Exception as e:  # zipfile/npy format errors: a damaged file
        raise VideoError(f"{p}: unreadable trajectory file ({e})") from None
    if t.ndim != 1 or qpos.ndim != 2 or len(t) != len(qpos):
        raise VideoError(f"{p}: time {t.shape} and qpos {qpos.shape} do not match")
    if len(t) == 0:
        raise VideoError(f"{p}: the trajectory has no frame")
    if not (np.all(np.isfinite(qpos)) and np.all(np.isfinite(t))):
        raise VideoError(f"{p}: the trajectory holds non-finite values")
    return traj


def _choose_gl_backend() -> str:
    """OSMesa where there is no display (unless the caller chose a backend)."""
    if "MUJOCO_GL" not in os.environ and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        if "mujoco" in sys.modules:
            raise VideoError(
                "mujoco is already imported in this process: render in a fresh one "
                "(python -m moe_loco_sim.video), where MUJOCO_GL can still be set"
            )
        os.environ["MUJOCO_GL"] = "osmesa"
    return os.environ.get("MUJOCO_GL", "")


def _dress(spec: Any) -> None:
    """A checker texture on the terrain (so motion shows) and a sky: looks only, no physics."""
    import mujoco

    spec.add_texture(
        name="video_grid",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.42, 0.46, 0.5],
        rgb2=[0.3, 0.34, 0.38],
        width=300,
        height=300,
        mark=mujoco.mjtMark.mjMARK_EDGE,
        markrgb=[0.85, 0.85, 0.85],
    )
    spec.add_texture(
        name="video_sky",
        type=mujoco.mjtTexture.mjTEXTURE_SKYBOX,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
        rgb1=[0.45, 0.62, 0.8],
        rgb2=[0.0, 0.0, 0.0],
        width=512,
        height=3072,
    )
    material = spec.add_material(name="video_grid", texrepeat=[2, 2], texuniform=True)
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "video_grid"
    for geom in spec.worldbody.geoms:  # the terrain; the robot's geoms are in its bodies
        geom.material = "video_grid"


def render_video(
    trajectory: Trajectory,
    out: str | os.PathLike[str],
    width: int = 640,
    height: int = 360,
    fps: float = 30.0,
) -> dict[str, Any]:
    """Render ``trajectory`` to an MP4 with a camera tracking the base; returns a summary."""
    if width < 16 or height < 16 or width % 2 or height % 2 or not fps > 0:
        raise VideoError(f"width/height must be even and >= 16 and fps > 0: {width}x{height}@{fps}")
    backend = _choose_gl_backend()
    import imageio_ffmpeg
    import mujoco

    from moe_loco_sim.go2_model import Go2Indices
    from moe_loco_sim.scene import build_scene_spec

    spec, _ = build_scene_spec(trajectory.terrain, trajectory.contact, trajectory.timestep)
    _dress(spec)
    model = spec.compile()
    base_body = Go2Indices.from_model(model).base_body
    if trajectory.qpos.shape[1] != model.nq:
        raise VideoError(
            f"the trajectory has {trajectory.qpos.shape[1]} qpos values a frame, the "
            f"{trajectory.terrain} scene {model.nq}: recorded on another model"
        )
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)
    data = mujoco.MjData(model)
    try:
        renderer = mujoco.Renderer(model, height, width)
    except Exception as e:
        hint = " (install libosmesa6)" if backend == "osmesa" else ""
        raise VideoError(
            f"cannot create an OpenGL context with MUJOCO_GL={backend!r}{hint}: {e}"
        ) from None
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    camera.trackbodyid = base_body
    camera.distance, camera.elevation, camera.azimuth = 2.0, -20.0, 135.0
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # frames at a steady rate of sim time: the last recorded pose at or before each instant
    t = trajectory.time
    instants = np.arange(t[0], t[-1] + 1e-9, 1.0 / fps)
    index = np.clip(np.searchsorted(t, instants + 1e-9, side="right") - 1, 0, len(t) - 1)
    writer = imageio_ffmpeg.write_frames(
        str(out),
        (width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=6,
        macro_block_size=1,  # any even size is fine for yuv420p
    )
    try:
        writer.send(None)  # start ffmpeg
        for i in index:
            data.qpos[:] = trajectory.qpos[i]
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera)
            writer.send(np.ascontiguousarray(renderer.render()))
    finally:
        writer.close()
        renderer.close()
    return {"frames": len(index), "seconds": float(t[-1] - t[0]), "path": str(out), "gl": backend}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="moe-loco-render", description=__doc__.split("\n")[0])
    p.add_argument("trajectory", type=Path, help="trajectory .npz (moe-loco-sim --record-...)")
    p.add_argument("-o", "--output", type=Path, help="MP4 to write (default: beside it)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=float, default=30.0)
    a = p.parse_args(argv)
    out = a.output or a.trajectory.with_suffix(".mp4")
    try:
        info = render_video(load_trajectory(a.trajectory), out, a.width, a.height, a.fps)
    except VideoError as e:
        print(f"moe-loco-render: {e}", file=sys.stderr)
        return 2
    print(f"moe-loco-render: {info['frames']} frames ({info['seconds']:.1f} s) to {info['path']}")
    return 0


def render_in_subprocess(
    trajectory: str | os.PathLike[str], out: str | os.PathLike[str], timeout: float = 600.0
) -> subprocess.CompletedProcess[str]:
    """Run :func:`main` in a fresh interpreter (for callers that imported mujoco already)."""
    return subprocess.run(
        [sys.executable, "-m", "moe_loco_sim.video", str(trajectory), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


if __name__ == "__main__":
    sys.exit(main())
