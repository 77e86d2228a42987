"""Batch-1 latency of one policy step: the ONNX Runtime policy runtime vs the torch module.

Exports a seeded random-initialised policy (the paper's sizes) to a temporary file, then times
``PolicyRuntime.step`` (ONNX Runtime, one thread, as the robot runs it) and the same stage-2 step
in torch (``torch.set_num_threads(1)``, inference mode, default backends) in alternating blocks
(each opened by a few untimed steps), so that both see the same machine conditions. Also prints
the graph's work per step (matmul MACs counted from the ONNX graph), its weight bytes, and two
floors measured on this core: arithmetic (one-thread SGEMM rate) and memory (one-thread GEMV
streaming rate over a weight-sized matrix). A last phase paces the runtime at the control rate,
asleep between steps as on the robot: its latency is that of weights partly evicted from the
caches, the figure the control loop sees.

The last line is
``policy_step p50_ms=<x> p99_ms=<y> torch_p99_ms=<z> speedup=<torch_p99/ort_p99>``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from moe_loco_controller.core.policy import PolicyRuntime
from moe_loco_training.export import (
    DeployPolicy,
    TrainingProvenance,
    export_policy,
    graph_macs,
    random_policy,
)


def _percentiles(ts: np.ndarray) -> tuple[float, float]:
    return float(np.percentile(ts, 50) * 1e3), float(np.percentile(ts, 99) * 1e3)


def _sgemm_gflops(n: int = 1024, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def _gemv_gbps(nbytes: int, reps: int = 300) -> float:
    cols = 1024
    w = torch.randn(max(1, nbytes // 4 // cols), cols)
    x = torch.randn(cols)
    for _ in range(20):
        w @ x
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        w @ x
        ts.append(time.perf_counter() - t)
    return w.numel() * 4 / float(np.median(ts)) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000, help="timed steps per engine (5000)")
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--block", type=int, default=1000, help="timed steps per alternating block")
    ap.add_argument("--block-warmup", type=int, default=50, help="untimed steps opening a block")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--paced-steps", type=int, default=500, help="steps paced at the control rate (500)"
    )
    ap.add_argument("--paced-period", type=float, default=0.02, help="their period [s]")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)

    model = random_policy(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_policy.onnx"
        export_policy(model, path, provenance=TrainingProvenance(seed=args.seed))
        runtime = PolicyRuntime(path)  # CPU, intra-op threads 1, sequential
        macs = graph_macs(path)

    meta = runtime.metadata
    deploy = DeployPolicy(model).eval()
    rng = np.random.default_rng(args.seed)
    n_in = 1024
    proprio = (0.3 * rng.standard_normal((n_in, meta.observation.proprio_dim))).astype(np.float32)
    command = (0.3 * rng.standard_normal((n_in, meta.observation.command_dim))).astype(np.float32)
    proprio_t, command_t = torch.from_numpy(proprio), torch.from_numpy(command)
    scale_t = torch.ones(meta.num_experts)
    state = [deploy.example_inputs()[2 + k] for k in range(4)]

    def ort_step(i: int) -> None:
        runtime.step(proprio[i], command[i])

    def torch_step(i: int) -> None:
        out = deploy(proprio_t[i : i + 1], command_t[i : i + 1], *state, scale_t)
        state[:] = out[1:5]

    ort_ts: list[float] = []
    torch_ts: list[float] = []
    with torch.inference_mode():
        for i in range(args.warmup):
            ort_step(i % n_in)
            torch_step(i % n_in)
        done = 0
        while done < args.steps:
            n = min(args.block, args.steps - done)
            for step, ts in ((ort_step, ort_ts), (torch_step, torch_ts)):
                for i in range(args.block_warmup):  # the other engine just evicted our weights
                    step(i % n_in)
                for i in range(done, done + n):
                    t = time.perf_counter()
                    step(i % n_in)
                    ts.append(time.perf_counter() - t)
            done += n

        # as on the robot: one step per 20 ms control period, the thread asleep in between (the
        # weights, 4x the L2 here, are then partly evicted: a cold step, not a warm one)
        paced_ts: list[float] = []
        deadline = time.perf_counter()
        for i in range(args.paced_steps):
            deadline += args.paced_period
            time.sleep(max(0.0, deadline - time.perf_counter()))
            t = time.perf_counter()
            ort_step(i % n_in)
            paced_ts.append(time.perf_counter() - t)

    ort_p50, ort_p99 = _percentiles(np.array(ort_ts))
    torch_p50, torch_p99 = _percentiles(np.array(torch_ts))
    total_macs = sum(macs.values())
    flops = 2 * total_macs
    params = sum(p.numel() for m in model.deploy_modules().values() for p in m.parameters())
    weight_bytes = 4 * params
    gflops = _sgemm_gflops()
    gbps = _gemv_gbps(weight_bytes)
    print(
        f"graph: {meta.num_experts} experts, {params:,} parameters "
        f"({weight_bytes / 1e6:.2f} MB fp32)"
    )
    print(
        f"work per step: {total_macs:,} MACs = {flops / 1e6:.2f} MFLOP "
        f"({', '.join(f'{k} {v:,}' for k, v in sorted(macs.items()))})"
    )
    print(
        f"one core here: SGEMM {gflops:.1f} GFLOP/s -> arithmetic floor "
        f"{flops / gflops / 1e6:.3f} ms; GEMV streaming {gbps:.1f} GB/s -> weight-read floor "
        f"{weight_bytes / gbps / 1e6:.3f} ms"
    )
    print(f"onnxruntime (1 thread): p50 {ort_p50:.4f} ms  p99 {ort_p99:.4f} ms  n={len(ort_ts)}")
    print(
        f"torch       (1 thread): p50 {torch_p50:.4f} ms  p99 {torch_p99:.4f} ms  n={len(torch_ts)}"
    )
    if paced_ts:
        paced_p50, paced_p99 = _percentiles(np.array(paced_ts))
        print(
            f"onnxruntime paced at {1 / args.paced_period:.0f} Hz, asleep between steps: "
            f"p50 {paced_p50:.4f} ms  p99 {paced_p99:.4f} ms  n={len(paced_ts)} "
            f"({paced_p50 / ort_p50:.1f}x the back-to-back p50: cache-cold weights)"
        )
    print(
        f"policy_step p50_ms={ort_p50:.4f} p99_ms={ort_p99:.4f} "
        f"torch_p99_ms={torch_p99:.4f} speedup={torch_p99 / ort_p99:.2f}"
    )


if __name__ == "__main__":
    main()
