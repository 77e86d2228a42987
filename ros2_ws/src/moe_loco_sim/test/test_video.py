"""Offscreen video of a simulated run: the bridge records the trajectory, a fresh process renders
it with OSMesa into an MP4 whose frames show the robot; bad trajectory files are refused."""

import os
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest

from moe_loco_sim.bridge import BridgeConfig, SimBridge
from moe_loco_sim.video import TrajectoryRecorder, VideoError, load_trajectory, render_in_subprocess


class NoPorts:
    def take_lowcmd(self):
        return []

    def take_wireless(self):
        return []

    def write_lowstate(self, data):
        pass


def test_recorder_samples_on_a_steady_grid_of_sim_time(tmp_path):
    bridge = SimBridge(BridgeConfig(spawn="stand", rtf=0.0), NoPorts())
    rec = TrajectoryRecorder(bridge.robot, 30.0, "plane", "menagerie")

    def tick():
        rec.sample()
        return True

    bridge.run(duration=2.0, on_tick=tick)
    t = np.array(rec.times)
    # from the first physics step (5 ms) to 2 s at 30 fps, each frame the first step at or past
    # its instant on the grid 0.005 + k / 30 (no drift)
    assert len(t) == 60 and t[0] == pytest.approx(0.005)
    grid = 0.005 + np.arange(60) / 30
    assert np.all(t >= grid - 1e-9) and np.all(t - grid < 0.005)
    traj = load_trajectory(rec.save(tmp_path / "t.npz"))
    assert traj.qpos.shape == (60, bridge.robot.model.nq) and traj.terrain == "plane"
    # the robot limp on the plane falls: the recording shows motion, not one pose repeated
    assert np.abs(traj.qpos[-1, 2] - traj.qpos[0, 2]) > 0.05


def test_bridge_cli_records_and_a_fresh_process_renders_an_mp4(tmp_path, unitree_domain):
    npz, mp4 = tmp_path / "run.npz", tmp_path / "run.mp4"
    cmd = [
        sys.executable, "-m", "moe_loco_sim.bridge", "--domain", str(unitree_domain),
        "--interface", "lo", "--rtf", "0", "--duration", "1.0", "--record-trajectory", str(npz),
        "--record-fps", "20",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    subprocess.run(cmd, check=True, timeout=60, capture_output=True, env=env)
    traj = load_trajectory(npz)
    assert len(traj.time) == 20  # 0.005 + k * 0.05 s up to 1 s
    done = render_in_subprocess(npz, mp4)
    assert done.returncode == 0, done.stderr
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(mp4))
    # 30 fps of sim time over the recorded span (0.95 s): 29 frames
    assert frames == len(np.arange(traj.time[0], traj.time[-1] + 1e-9, 1 / 30)) == 29
    assert seconds == pytest.approx(29 / 30, abs=0.05)
    reader = imageio_ffmpeg.read_frames(str(mp4))
    meta = next(reader)
    w, h = meta["size"]
    first = np.frombuffer(next(reader), np.uint8).reshape(h, w, 3)
    reader.close()
    # a rendered scene (floor, sky, a dark robot), not a blank or black frame
    assert first.std() > 10 and 20 < first.mean() < 235


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "no such trajectory file"),
        ("not_npz", "unreadable trajectory file"),
        ("no_qpos", "lacks qpos"),
        ("mismatch", "do not match"),
        ("nan", "non-finite"),
        ("empty", "no frame"),
    ],
)
def test_bad_trajectory_files_are_refused_by_name(tmp_path, kind, message):
    meta = {"terrain": "plane", "contact": "cheap", "timestep": 0.005}
    p = tmp_path / "t.npz"
    if kind == "not_npz":
        p.write_bytes(b"not a zip file")
    elif kind == "no_qpos":
        _npz(p, time=np.zeros(3), **meta)
    elif kind == "mismatch":
        _npz(p, time=np.zeros(3), qpos=np.zeros((2, 19)), **meta)
    elif kind == "nan":
        _npz(p, time=np.zeros(2), qpos=np.full((2, 19), np.nan), **meta)
    elif kind == "empty":
        _npz(p, time=np.zeros(0), qpos=np.zeros((0, 19)), **meta)
    with pytest.raises(VideoError, match=message):
        load_trajectory(p)
    if kind != "missing":
        done = subprocess.run(
            [sys.executable, "-m", "moe_loco_sim.video", str(p)], capture_output=True, text=True
        )
        assert done.returncode == 2 and message in done.stderr
        assert not p.with_suffix(".mp4").exists()
