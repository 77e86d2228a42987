"""make demo: the simulated Go2, the controller and a scripted joystick, recorded and summarised.

Runs, in real time over the robot's own DDS topics (domain 1 on lo, Unitree's sim convention):
the MuJoCo sim bridge (a separate process, ``moe-loco-sim``), the controller node with its Unitree
link, a scripted operator publishing ``moe_loco/command`` (stand up; walk quadrupedally; switch
to bipedal; walk; switch back; stop) and the recorder writing every controller topic to an MCAP
bag. Then it reads the bag back, prints a summary (distance, gait and mode timeline, falls,
velocity tracking, loop timing) and writes a plot, all under ``runs/<timestamp>/``.

It uses the newest policy under ``policies/``; until a trained one exists it exports a seeded
random policy and says so: that policy does not walk (it may stand or fall), and the summary
reports what happened as it is.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Phase:
    """One step of the scripted operator: from ``t`` on, this command (request sent once)."""

    t: float
    label: str
    vx: float = 0.0
    gait: int = 0
    request: int = 0


def scenario(walk: float) -> list[Phase]:
    from moe_loco_msgs.msg import LocoCommand as C

    return [
        Phase(0.0, "passive"),
        Phase(1.0, "stand up", request=C.REQUEST_STAND),
        Phase(3.6, "policy on", request=C.REQUEST_RUN),
        Phase(4.5, "walk (quadrupedal)", vx=walk),
        Phase(10.5, "stop, switch to bipedal", gait=1),
        Phase(14.5, "walk (bipedal)", vx=0.5 * walk, gait=1),
        Phase(20.5, "stop, switch back", gait=0),
        Phase(24.5, "stop (quadrupedal)"),
        Phase(28.0, "end"),
    ]


def find_policy(run_dir: Path) -> tuple[Path, bool]:
    """The newest policy in policies/ (the highest version in its name), or a seeded random
    export (second value: trained?)."""
    from moe_loco_controller.core.policy_files import newest_policy

    newest = newest_policy((ROOT / "policies").glob("*.onnx"))
    if newest is not None:
        return newest, True
    from moe_loco_training.export import export_policy, random_policy

    path = run_dir / "random_policy_seed0.onnx"
    export_policy(random_policy(0), path)
    return path, False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--policy", type=Path, help="policy file (default: newest in policies/)")
    ap.add_argument("--domain", type=int, default=1, help="DDS domain of the sim link (1)")
    ap.add_argument("--walk", type=float, default=0.5, help="quadrupedal walking speed [m/s]")
    ap.add_argument("--contact", default="menagerie", help="sim contact preset")
    ap.add_argument(
        "--actuation-delay-ms",
        type=float,
        default=0.0,
        help="the sim's motors apply each command this long after it arrived (0)",
    )
    ap.add_argument("--viewer", action="store_true", help="MuJoCo's live viewer (needs a display)")
    ap.add_argument(
        "--video", action="store_true", help="also render the run to an MP4 (offscreen, OSMesa)"
    )
    ap.add_argument("--out", type=Path, help="run directory (default runs/<timestamp>)")
    a = ap.parse_args()

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "UDPv4")
    run_dir = a.out or ROOT / "runs" / datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    if a.policy is not None:
        policy, trained = a.policy, True
    else:
        policy, trained = find_policy(run_dir)
    if not trained:
        print(
            "demo: no trained policy under policies/ yet: using a seeded RANDOM policy "
            f"({policy.name}). It has not learned to walk: expect no progress, maybe a fall.",
            flush=True,
        )
    print(f"demo: policy {policy}; writing to {run_dir}", flush=True)

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from moe_loco_controller.bag import RECORDED_TOPICS, BagWriter, topic_types
    from moe_loco_controller.core.config import load_config
    from moe_loco_controller.io.link import UnitreeLink
    from moe_loco_controller.nodes.controller_node import ControllerNode
    from moe_loco_controller.nodes.recorder import RecorderNode
    from moe_loco_msgs.msg import LocoCommand

    bridge_cmd = [
        sys.executable, "-m", "moe_loco_sim.bridge", "--domain", str(a.domain),
        "--interface", "lo", "--contact", a.contact, "--report-every", "0.1",
        "--actuation-delay-ms", str(a.actuation_delay_ms), "--exit-with-parent",
    ] + (["--viewer"] if a.viewer else [])  # fmt: skip
    trajectory = run_dir / "trajectory.npz"
    if a.video:
        bridge_cmd += ["--record-trajectory", str(trajectory)]
    bridge = subprocess.Popen(bridge_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    truth: list[dict] = []

    def read_bridge() -> None:
        for line in bridge.stdout:  # type: ignore[union-attr]
            if line.startswith("{"):
                truth.append(json.loads(line))

    threading.Thread(target=read_bridge, daemon=True).start()
    deadline = time.monotonic() + 30
    while not truth and bridge.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not truth:
        err = bridge.stderr.read() if bridge.poll() is not None else "no report in 30 s"
        print(f"demo: the sim bridge did not start: {err}", file=sys.stderr)
        bridge.kill()
        return 1

    cfg = load_config().replace(
        **{"link.interface": "lo", "link.domain_id": a.domain, "link.release_sport_mode": False}
    )
    link = UnitreeLink(a.domain, "lo", False, cfg.link.other_publisher_check_s)
    rclpy.init()
    controller = ControllerNode(cfg, policy, link)
    bag_path = run_dir / "bag"
    topics = topic_types(cfg.namespace, RECORDED_TOPICS)
    writer = BagWriter(bag_path, topics)
    recorder = RecorderNode(writer, topics)
    operator = Node("demo_operator")
    pub = operator.create_publisher(LocoCommand, f"{cfg.namespace}/command", 10)
    executor = SingleThreadedExecutor()
    for n in (controller, recorder, operator):
        executor.add_node(n)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    controller.start()

    phases = scenario(a.walk)
    t0 = time.monotonic()
    current = -1
    try:
        while True:
            t = time.monotonic() - t0
            i = max(k for k, p in enumerate(phases) if p.t <= t)
            if phases[i].label == "end":
                break
            p = phases[i]
            msg = LocoCommand(vx=p.vx, gait=p.gait, deadman=True)
            if i != current:
                current = i
                msg.request = p.request
                print(f"demo: t={t:5.1f} s  {p.label}", flush=True)
            pub.publish(msg)
            time.sleep(0.02)
    finally:
        controller.stop()
        timing = controller.timing()
        executor.shutdown()
        spin.join(timeout=5)
        for n in (recorder, controller, operator):
            n.destroy_node()  # the recorder before its writer closes (platform notes)
        writer.close()
        link.close()
        rclpy.try_shutdown()
        bridge.terminate()
        try:
            bridge.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bridge.kill()

    video = None
    if a.video:
        from moe_loco_sim.video import render_in_subprocess

        print("demo: rendering the video offscreen ...", flush=True)
        done = render_in_subprocess(trajectory, run_dir / "demo.mp4")
        if done.returncode == 0:
            video = run_dir / "demo.mp4"
        else:
            print(f"demo: no video: {done.stderr.strip()}", file=sys.stderr)
    summary = summarise(bag_path, truth, timing, policy, trained)
    summary["video"] = str(video) if video else None
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    plot(bag_path, truth, run_dir / "demo.png", summary)
    print_summary(summary, run_dir)
    return 1 if a.video and video is None else 0


def read_statuses(bag_path: Path) -> list:
    from rclpy.serialization import deserialize_message

    from moe_loco_controller.bag import read_bag
    from moe_loco_msgs.msg import ControllerStatus

    bag = read_bag(bag_path)
    return [deserialize_message(data, ControllerStatus) for _, data in bag.of("/moe_loco/status")]


def summarise(bag_path, truth, timing, policy, trained) -> dict:
    statuses = read_statuses(bag_path)
    if not statuses:
        raise SystemExit(f"demo: the bag {bag_path} holds no status messages")
    ct = np.array([s.control_time for s in statuses])
    modes = [s.mode_name for s in statuses]
    gaits = [int(s.gait) for s in statuses]
    timeline, last = [], None
    for t, m, g in zip(ct - ct[0], modes, gaits, strict=True):
        label = f"{m}/{'bipedal' if g else 'quadrupedal'}"
        if label != last:
            timeline.append((round(float(t), 2), label))
            last = label
    tt = np.array([r["t"] for r in truth])
    pos = np.array([r["base_pos"] for r in truth])
    posture = postures(truth)
    vel = np.gradient(pos[:, 0], tt) if len(tt) > 2 else np.zeros(len(tt))
    run = np.array([m == "RUN" for m in modes])
    run_t = ct[run]
    in_run = (tt >= run_t[0]) & (tt <= run_t[-1]) if run.any() else np.zeros(len(tt), bool)
    fallen = (posture == "fallen") & in_run
    falls = int(fallen[0]) + int(np.sum(~fallen[:-1] & fallen[1:])) if len(tt) else 0
    if run.any():
        i0, i1 = np.searchsorted(tt, [run_t[0], run_t[-1]])
        seg = pos[i0 : max(i0 + 1, i1)]
        distance = float(np.sum(np.linalg.norm(np.diff(seg[:, :2], axis=0), axis=1)))
        net = float(np.linalg.norm(seg[-1, :2] - seg[0, :2]))
        vx_meas = np.interp(run_t, tt, vel)
        vx_cmd = np.array([s.command[0] for s, r in zip(statuses, run, strict=True) if r])
        track = float(np.mean(np.abs(vx_cmd - vx_meas)))
    else:
        distance = net = track = math.nan
    return {
        "policy": str(policy),
        "trained_policy": trained,
        "control_steps": len(statuses),
        "timeline": timeline,
        "faults": sorted({f for s in statuses for f in s.faults}),
        "falls": falls,
        "posture_at_end": str(posture[-1]) if len(posture) else None,
        "gait_changes": gait_changes(ct - ct[0], modes, gaits, tt - ct[0], posture),
        "distance_run_m": distance,
        "net_displacement_run_m": net,
        "vx_tracking_mae_run": track,
        "segments": command_segments(ct, modes, gaits, statuses, tt, pos),
        "loop_rate_hz": timing.get("loop_rate_hz"),
        "loop_period_err_p99_ms": timing.get("loop_period_err_p99_ms"),
        "loop_critical_p99_ms": timing.get("loop_critical_p99_ms"),
        "lowcmd_rate_hz": timing.get("cmd_rate_hz"),
        "sim_lowcmd_bad_crc": truth[-1].get("lowcmd_bad_crc") if truth else None,
        "bag": str(bag_path),
    }


UP = 0.9
"""A posture holds when the base's z axis (four legs) or x axis (rear legs) is this close to
world up (cos; 0.9: within 26 degrees)."""
FALLEN_HEIGHT = 0.15
"""Base below this [m]: lying (the Go2 stands at ~0.28 m on four legs, ~0.41 m on two)."""


def postures(truth: list[dict]) -> np.ndarray:
    """Per sim report: ``four`` (base z axis up), ``rear`` (nose up: on the rear legs),
    ``fallen`` (base below ``FALLEN_HEIGHT``, or tilted more than 60 degrees from both), else
    ``between`` (rearing up or dropping down)."""
    out = []
    for r in truth:
        up, nose, z = float(r["upright"]), float(r.get("nose_up", 0.0)), r["base_pos"][2]
        if z < FALLEN_HEIGHT or max(up, nose) < 0.5:
            out.append("fallen")
        elif up > UP:
            out.append("four")
        elif nose > UP:
            out.append("rear")
        else:
            out.append("between")
    return np.array(out, dtype=object)


def gait_changes(ct, modes, gaits, tt, posture) -> list[dict]:
    """Each gait command in RUN (the first RUN step's gait counts when it is bipedal): how long
    until the robot was in the gait's posture (rear legs / four legs; None: never, before the
    next change or the end of RUN) and the share of the rest of the stretch it stayed there."""
    out: list[dict] = []
    run = [m == "RUN" for m in modes]
    starts = []
    for i, running in enumerate(run):
        in_run = i > 0 and run[i - 1]  # else RUN begins here
        if running and (gaits[i] != gaits[i - 1] if in_run else gaits[i] == 1):
            starts.append(i)
    for k, i in enumerate(starts):
        end = len(modes) - 1
        for j in range(i + 1, len(modes)):
            if not run[j] or (k + 1 < len(starts) and j == starts[k + 1]):
                end = j - 1
                break
        target = "rear" if gaits[i] == 1 else "four"
        sel = (tt >= ct[i]) & (tt <= ct[end])
        reached = np.flatnonzero(sel & (posture == target))
        entry = {
            "t_s": round(float(ct[i]), 2),
            "gait": "bipedal" if gaits[i] == 1 else "quadrupedal",
            "duration_s": round(float(ct[end] - ct[i]), 2),
            "posture": target,
            "reached_after_s": None,
            "held_share": 0.0,
        }
        if reached.size:
            a = reached[0]
            after = sel & (tt >= tt[a])
            entry["reached_after_s"] = round(float(tt[a] - ct[i]), 2)
            entry["held_share"] = round(float(np.mean(posture[after] == target)), 3)
        out.append(entry)
    return out


def command_segments(ct, modes, gaits, statuses, tt, pos) -> list[dict]:
    """Each stretch of RUN with one command (vx, gait): its start [s from the first status],
    duration, path length and net displacement of the base (sim truth), and the net over the
    duration (the mean speed)."""
    out: list[dict] = []
    key = [
        (m == "RUN", round(float(s.command[0]), 3), int(g))
        for m, g, s in zip(modes, gaits, statuses, strict=True)
    ]
    i = 0
    while i < len(key):
        j = i
        while j + 1 < len(key) and key[j + 1] == key[i]:
            j += 1
        run, vx, gait = key[i]
        if run and ct[j] > ct[i]:
            a, b = np.searchsorted(tt, [ct[i], ct[j]])
            seg = pos[a : max(a + 1, b)]
            length = float(np.sum(np.linalg.norm(np.diff(seg[:, :2], axis=0), axis=1)))
            out.append(
                {
                    "start_s": round(float(ct[i] - ct[0]), 2),
                    "duration_s": round(float(ct[j] - ct[i]), 2),
                    "gait": "bipedal" if gait else "quadrupedal",
                    "command_vx": vx,
                    "distance_m": length,
                    "net_m": float(np.linalg.norm(seg[-1, :2] - seg[0, :2])),
                    "mean_speed": float(
                        np.linalg.norm(seg[-1, :2] - seg[0, :2]) / max(ct[j] - ct[i], 1e-9)
                    ),
                }
            )
        i = j + 1
    return out


def plot(bag_path, truth, out, summary) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    statuses = read_statuses(bag_path)
    ct = np.array([s.control_time for s in statuses])
    t0 = ct[0]
    tt = np.array([r["t"] for r in truth])
    pos = np.array([r["base_pos"] for r in truth])
    vel = np.gradient(pos[:, 0], tt) if len(tt) > 2 else np.zeros(len(tt))
    fig, ax = plt.subplots(4, 1, figsize=(10, 10), sharex=True)
    ax[0].plot(ct - t0, [s.command[0] for s in statuses], label="commanded vx")
    ax[0].plot(tt - t0, vel, label="measured vx (sim truth)", alpha=0.8)
    ax[0].plot(ct - t0, [s.estimated_lin_vel[0] for s in statuses], label="estimated vx", alpha=0.6)
    ax[0].set_ylabel("m/s")
    ax[0].legend(loc="upper right")
    ax[1].plot(tt - t0, pos[:, 2], label="base height")
    ax[1].set_ylabel("m")
    ax[1].legend(loc="upper right")
    ax[2].step(ct - t0, [s.gait for s in statuses], where="post", label="gait (1 = bipedal)")
    ax[2].step(ct - t0, [s.mode for s in statuses], where="post", label="mode (0 P,1 S,2 R,3 D)")
    ax[2].legend(loc="upper right")
    gates = np.array([list(s.gate_weights) or [0.0] * 6 for s in statuses])
    for k in range(gates.shape[1]):
        ax[3].plot(ct - t0, gates[:, k], label=f"expert {k}")
    ax[3].set_ylabel("gate weight")
    ax[3].set_xlabel("time [s]")
    ax[3].legend(loc="upper right", ncol=3)
    title = "MoE-Loco demo" + ("" if summary["trained_policy"] else " (RANDOM policy)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def print_summary(s: dict, run_dir: Path) -> None:
    print("\n=== demo summary ===")
    kind = "trained" if s["trained_policy"] else "RANDOM (untrained)"
    print(f"policy: {s['policy']} ({kind})")
    print("mode/gait timeline: " + ", ".join(f"{t:.1f}s {m}" for t, m in s["timeline"]))
    print(
        f"faults seen: {', '.join(s['faults']) or 'none'}; falls: {s['falls']}; "
        f"posture at the end: {s['posture_at_end']}"
    )
    for g in s["gait_changes"]:
        where = "on the rear legs" if g["posture"] == "rear" else "on four legs"
        after = g["reached_after_s"]
        print(
            f"  {g['t_s']:5.1f} s -> {g['gait']}: "
            + (
                f"{where} after {after:.2f} s, then {100 * g['held_share']:.0f} % of the "
                f"{g['duration_s'] - after:.1f} s left"
                if after is not None
                else f"never {where} in {g['duration_s']:.1f} s"
            )
        )
    print(
        f"distance walked under the policy: {s['distance_run_m']:.2f} m "
        f"(net {s['net_displacement_run_m']:.2f} m); vx tracking error (mean |cmd - sim|): "
        f"{s['vx_tracking_mae_run']:.3f} m/s"
    )
    for g in s["segments"]:
        print(
            f"  {g['start_s']:5.1f} s +{g['duration_s']:4.1f} s  {g['gait']:11s} vx "
            f"{g['command_vx']:+.2f} m/s: walked {g['distance_m']:.2f} m (net {g['net_m']:.2f} m, "
            f"mean speed {g['mean_speed']:.2f} m/s)"
        )
    print(
        f"control loop: {s['loop_rate_hz']:.1f} Hz, period error p99 "
        f"{s['loop_period_err_p99_ms']:.2f} ms, step p99 {s['loop_critical_p99_ms']:.2f} ms; "
        f"LowCmd_ {s['lowcmd_rate_hz']:.0f} Hz ({s['sim_lowcmd_bad_crc']} bad CRC at the sim)"
    )
    if not s["trained_policy"]:
        print(
            "note: the policy is random and untrained, so it does not walk (see the distance) "
            "and may fall; that is the expected outcome, not a bug."
        )
    print(f"bag: {s['bag']}\nplot: {run_dir / 'demo.png'}\nsummary: {run_dir / 'summary.json'}")
    if s.get("video"):
        print(f"video: {s['video']}")


if __name__ == "__main__":
    sys.exit(main())
