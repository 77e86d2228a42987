"""make bench-sim: the lockstep harness's real-time factor and the sim bridge's LowState_ rate.

1. Lockstep (moe_loco_sim.lockstep): physics at 200 Hz + the controller core at 50 Hz with a
   seeded random MoE-Loco export (the real graph's compute: estimator, LSTM, 6 experts), the
   controller YAML's configuration, Menagerie contacts, on the plane. The operator stands the
   robot up and runs the policy with a forward command. A random policy falls within seconds, and
   the safety latch would then stop the policy (DAMP), so the supervisor's tilt/joint limits are
   relaxed here: the policy runs for the whole measured time, flailing on the ground (more
   contacts, not fewer). rtf_lockstep = sim seconds / wall seconds of the whole run (stand-up
   included), the best of ``--runs`` runs with the same seed, whose traces must be bit-identical.
2. Bridge (moe-loco-sim in its own process, real-time mode, on a private domain on lo): a
   subscriber in this process counts every LowState_ it receives (CRC-checked) while a 500 Hz
   LowCmd_ stream holds the robot standing, as the controller would. lowstate_hz = frames
   received / seconds, over ``--bridge-seconds`` after a warm-up.

The last line is ``sim rtf_lockstep=<x> lowstate_hz=<y>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

EXPORT = """
import sys
from moe_loco_training.export import export_policy, random_policy
export_policy(random_policy(0), sys.argv[1])
"""


def bench_lockstep(policy: Path, seconds: float, contact: str) -> tuple[float, str, dict]:
    from moe_loco_controller.core.config import load_config
    from moe_loco_controller.core.controller import Mode, Request
    from moe_loco_controller.core.safety import SafetyLimits
    from moe_loco_sim.lockstep import LockstepConfig, LockstepHarness, operator
    from moe_loco_sim.scene import build_scene

    control = load_config().control
    relaxed = SafetyLimits(
        quad_roll=10.0, quad_pitch=10.0, biped_side=10.0, biped_nose_down=10.0,
        biped_back=10.0, joint_margin=10.0, velocity_factor=100.0,
    )  # fmt: skip
    control = dataclasses.replace(control, safety=relaxed)
    script = [
        operator(0.0),
        operator(0.5, request=Request.STAND),
        operator(0.5 + control.stand_duration_s + 0.1, request=Request.RUN),
        operator(0.5 + control.stand_duration_s + 0.5, vx=0.5),
    ]
    scene = build_scene("plane", contact)
    harness = LockstepHarness(policy, control, LockstepConfig(contact=contact), script, scene=scene)
    t0 = time.perf_counter()
    trace = harness.run(seconds)
    wall = time.perf_counter() - t0
    run_s = float((trace.mode == Mode.RUN).sum()) * harness.core.control_dt
    info = {
        "timeline": trace.modes_timeline(),
        "run_s": run_s,
        "physics_steps": harness.robot.steps,
        "control_steps": len(trace),
    }
    return seconds / wall, trace.digest(), info


def bench_bridge(seconds: float, warmup: float) -> dict:
    from moe_loco_controller.core import go2
    from moe_loco_controller.core.config import load_config
    from moe_loco_controller.core.robot_state import JointCommand
    from moe_loco_controller.io.lowlevel import LowCmdWriter, LowStateReader, init_channels

    domain = 80 + os.getpid() % 10
    bridge = subprocess.Popen(
        [sys.executable, "-m", "moe_loco_sim.bridge", "--domain", str(domain), "--interface",
         "lo", "--spawn", "stand", "--report-every", "1.0", "--exit-with-parent",
         "--duration", str(seconds + warmup + 30)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    reports: list[dict] = []

    def read() -> None:
        assert bridge.stdout is not None
        for line in bridge.stdout:
            if line.startswith("{"):
                reports.append(json.loads(line))

    threading.Thread(target=read, daemon=True).start()
    init_channels(domain, "lo")
    count = [0]
    lock = threading.Lock()

    def on_state(_state: object) -> None:
        with lock:
            count[0] += 1

    reader = LowStateReader(on_state=on_state)
    writer = LowCmdWriter()
    c = load_config().control
    zeros = np.zeros(12)
    stand = JointCommand(
        go2.DEFAULT_STANDING_POSE.copy(),
        zeros,
        np.full(12, c.stand_kp),
        np.full(12, c.stand_kd),
        zeros,
    )
    stop = threading.Event()

    def stream() -> None:  # the controller's 500 Hz LowCmd_ stream, on absolute deadlines
        t0, k = time.monotonic(), 0
        while not stop.is_set():
            writer.send(stand)
            k += 1
            time.sleep(max(0.0, t0 + k * 0.002 - time.monotonic()))

    try:
        deadline = time.monotonic() + 30
        while count[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if count[0] == 0:
            raise RuntimeError("no LowState_ from the bridge within 30 s")
        threading.Thread(target=stream, daemon=True).start()
        time.sleep(warmup)
        with lock:
            n0, t0 = count[0], time.monotonic()
        r0 = reports[-1]
        time.sleep(seconds)
        with lock:
            n1, t1 = count[0], time.monotonic()
        r1 = reports[-1]
    finally:
        stop.set()
        time.sleep(0.05)
        bridge.terminate()
        bridge.wait(timeout=10)
        writer.close()
        reader.close()
    wall = r1["t"] - r0["t"]
    return {
        "lowstate_hz": (n1 - n0) / (t1 - t0),
        "bridge_sent_hz": (r1["lowstate_sent"] - r0["lowstate_sent"]) / wall,
        "bridge_lowcmd_hz": (r1["lowcmd_received"] - r0["lowcmd_received"]) / wall,
        "bridge_rtf": (r1["sim_time"] - r0["sim_time"]) / wall,
        "bad_crc_received": reader.bad_crc,
        "lowcmd_bad_crc": r1["lowcmd_bad_crc"],
        "lag_events": r1["lag_events"],
        "upright": r1["upright"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--lockstep-seconds", type=float, default=20.0, help="sim seconds per run")
    ap.add_argument("--runs", type=int, default=3, help="lockstep runs (same seed); best rtf")
    ap.add_argument("--bridge-seconds", type=float, default=10.0, help="measured wall seconds")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--contact", default="menagerie", choices=("menagerie", "cheap"))
    ap.add_argument("--policy", type=Path, help="policy file (default: a seeded random export)")
    a = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    policy = a.policy
    if policy is None:
        # in a child process: torch's worker threads outlive an export and would share the
        # two cores with the timed loop (measured here: rtf about half)
        policy = Path(tmp.name) / "bench_policy.onnx"
        subprocess.run([sys.executable, "-c", EXPORT, str(policy)], check=True)

    runs = [bench_lockstep(policy, a.lockstep_seconds, a.contact) for _ in range(a.runs)]
    rtfs = [r[0] for r in runs]
    identical = len({r[1] for r in runs}) == 1
    info = runs[0][2]
    rtf = max(rtfs)  # best of identical runs: the machine's other load only slows a run down
    print(f"lockstep ({a.contact} contacts, {a.lockstep_seconds:g} s sim, policy {policy.name}): "
          f"rtf {' / '.join(f'{r:.1f}' for r in rtfs)}; {info['physics_steps']} physics steps, "
          f"{info['control_steps']} control steps, policy running {info['run_s']:.1f} s; "
          f"modes {info['timeline']}")  # fmt: skip
    print(f"lockstep same seed, {a.runs} runs bit-identical: {'yes' if identical else 'NO'}")

    b = bench_bridge(a.bridge_seconds, a.warmup)
    print(
        f"bridge real-time: LowState_ received {b['lowstate_hz']:.1f} Hz (bridge sent "
        f"{b['bridge_sent_hz']:.1f} Hz), LowCmd_ received by the bridge {b['bridge_lowcmd_hz']:.1f}"
        f" Hz, bridge rtf {b['bridge_rtf']:.3f}, lag events {b['lag_events']}, bad CRC "
        f"{b['bad_crc_received']} / {b['lowcmd_bad_crc']}, upright {b['upright']:.3f}"
    )
    print(f"sim rtf_lockstep={rtf:.1f} lowstate_hz={b['lowstate_hz']:.1f}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
