"""Data-parallel training over several processes (``torchrun``): the process group and its helpers.

``torchrun --nproc_per_node=N moe-loco-train ...`` starts N copies of the trainer; each is one
*rank* with its own robots. What the ranks share and what they do not:

- every rank builds the same configuration and model; rank 0's weights are broadcast to the others
  before training (fresh, ``--init`` and ``--resume`` alike), so they start identical;
- each rank has its own randomness: rank 0 uses the configured seeds unchanged (a one-rank run is
  the single-process run), rank r > 0 seeds its environment and its action-sampling / minibatch /
  PAS generator with :func:`rank_seed` (the configured seed mixed with r), so the ranks collect
  different data;
- before every optimiser step the gradients are averaged over the ranks, and so is the minibatch's
  KL divergence, which drives the adaptive learning rate: every rank takes the same step at the
  same learning rate and the weights stay identical (the weights are never re-broadcast);
- rank 0 alone writes: progress lines, TensorBoard, ``config.json``, checkpoints, ``model.pt`` and
  the exported policy; its logged rollout statistics are its own robots' (the KL is the average).

A single process (no ``torchrun``, or ``--nproc_per_node=1``) makes no process group and runs the
code path it always ran. The backend is ``gloo`` for CPU tensors and ``nccl`` when training on a
CUDA device (each rank then uses ``cuda:LOCAL_RANK``); the collectives here copy to that device and
back, so they do not depend on where the model lives.

The helpers of rsl_rl's multi-GPU PPO (``broadcast_parameters``, ``reduce_parameters``) served as
the reference; here the gradients and the KL travel in one all-reduce per minibatch, a parameter
without a gradient counts as a zero gradient on every rank, and the ranks check that they run the
same configuration before they train.

Debugging: with ``MOE_LOCO_RANK_DUMP=<dir>`` in the environment every rank writes
``<dir>/rank<r>.json`` at the end of each ``Trainer.run`` (hashes of its weights, optimiser and
generator, its seeds, its first rollout's statistics); the distributed test reads them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

DUMP_ENV = "MOE_LOCO_RANK_DUMP"
"""Environment variable: a directory where every rank writes ``rank<r>.json`` (debugging, tests)."""


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the group: rank, world size, the collectives' device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    """None: no process group (a single process)."""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs, checkpoints and exports."""
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        """The device the collectives run on (nccl: this rank's GPU; gloo: the CPU)."""
        if self.backend == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


SINGLE = DistContext()
_owned = False
"""Whether :func:`init` made the process group (then :func:`shutdown` ends it)."""


def launched_world_size() -> int:
    """The world size ``torchrun`` set (``WORLD_SIZE``), 1 without it."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise RuntimeError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None


def backend_for(device: torch.device | str) -> str:
    """``nccl`` when training on CUDA, else ``gloo``."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init(device: torch.device | str = "cpu") -> DistContext:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1), or stay single.

    ``device`` is where training runs; it picks the backend (:func:`backend_for`). With CUDA each
    rank takes its own GPU, ``cuda:LOCAL_RANK``. Calling it again returns the group already joined.
    """
    if dist.is_available() and dist.is_initialized():
        return current()
    if launched_world_size() <= 1:
        return SINGLE
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this torch build")
    backend = backend_for(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    global _owned
    dist.init_process_group(backend=backend)
    _owned = True
    return current()


def current() -> DistContext:
    """The context of the process group this process has joined (:data:`SINGLE` if none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    return DistContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        backend=str(dist.get_backend()),
    )


def shutdown() -> None:
    """Leave the process group :func:`init` made (one its caller made stays)."""
    global _owned
    if _owned and dist.is_initialized():
        dist.destroy_process_group()
    _owned = False


def rank_seed(seed: int, rank: int, salt: int = 0) -> int:
    """The seed rank ``rank`` uses where the configuration says ``seed``.

    Rank 0: ``seed`` itself (so one rank is the single-process run, bit for bit). Rank r > 0: a
    32-bit seed that numpy's ``SeedSequence`` derives from (seed, r, salt): distinct, well-mixed
    streams per rank, and per ``salt`` (the iteration at which a rank starts fresh generators,
    e.g. on a resume, so that it does not replay the streams it started the run with).
    """
    if rank == 0:
        return int(seed)
    entropy = [int(seed) & 0xFFFFFFFF, int(seed) >> 32 & 0xFFFFFFFF, int(rank), int(salt)]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0])


def broadcast_module(module: nn.Module, ctx: DistContext, src: int = 0) -> None:
    """Overwrite every parameter and buffer of ``module`` with rank ``src``'s, in place."""
    if not ctx.enabled:
        return
    with torch.no_grad():
        for t in module.state_dict().values():  # detached views of the parameters and buffers
            buf = t.to(ctx.device)
            dist.broadcast(buf, src)
            if buf is not t:
                t.copy_(buf)


def average_gradients(
    parameters: Iterable[nn.Parameter], ctx: DistContext, *scalars: torch.Tensor
) -> list[float]:
    """Average the gradients of ``parameters`` over the ranks, in place, together with the
    ``scalars`` (0-d tensors, e.g. the minibatch's KL), in one all-reduce; returns the scalars'
    averages (every rank gets the same numbers). A missing gradient counts as zeros (and becomes
    a zero gradient), so every rank sends the same layout and steps the same parameters."""
    params = list(parameters)
    if not ctx.enabled:
        return [float(s) for s in scalars]
    grads = []
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad.reshape(-1))
    flat = torch.cat([*grads, *(s.detach().reshape(1).to(grads[0].dtype) for s in scalars)])
    buf = flat.to(ctx.device)
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    buf /= ctx.world_size
    flat = buf.to(flat.device)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n
    return [float(v) for v in flat[offset:]]


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` (picklable) on every rank (e.g. the run directory's name)."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src, device=ctx.device)
    return box[0]


def check_same(what: str, value: str, ctx: DistContext) -> None:
    """Raise ``RuntimeError`` on every rank unless all ranks hold the same ``value``."""
    if not ctx.enabled:
        return
    digest = hashlib.sha256(value.encode()).hexdigest()
    every: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(every, digest)
    odd = [r for r, d in enumerate(every) if d != every[0]]
    if odd:
        raise RuntimeError(
            f"the ranks disagree on {what}: ranks {odd} differ from rank 0 (every rank must be "
            "started with the same arguments and files)"
        )


def tensor_digest(tensors: Iterable[torch.Tensor]) -> str:
    """sha256 over the bytes of ``tensors`` in order (equal digests: bit-identical tensors)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def write_rank_dump(report: dict[str, Any], ctx: DistContext) -> Path | None:
    """``$MOE_LOCO_RANK_DUMP/rank<r>.json`` with ``report`` (nothing when the variable is unset)."""
    where = os.environ.get(DUMP_ENV)
    if not where:
        return None
    path = Path(where) / f"rank{ctx.rank}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rank": ctx.rank, "world_size": ctx.world_size, **report}))
    return path


__all__ = [
    "DUMP_ENV",
    "SINGLE",
    "DistContext",
    "average_gradients",
    "backend_for",
    "broadcast_module",
    "broadcast_object",
    "check_same",
    "current",
    "init",
    "launched_world_size",
    "rank_seed",
    "shutdown",
    "tensor_digest",
    "write_rank_dump",
]
