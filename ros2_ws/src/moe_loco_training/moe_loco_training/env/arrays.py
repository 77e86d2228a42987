"""One task code for both physics backends: the environment's arrays are numpy on the host (the
C MuJoCo backend) or torch tensors on the Warp device (``env.backend: warp``), and the code that
computes observations, rewards, terminations, commands and the curriculum is written once
against the Python array API standard (``array_api_compat``, the layer SciPy and scikit-learn
use for the same purpose). On the C backend the numpy calls are those the code made before it
was written this way, so the CPU path keeps its numbers and its random stream.

What numpy and torch spell differently, and the array API leaves out, is here: copies, index
vectors of a mask, constants placed beside an array, conversion to and from torch at the
environment's boundary, and the random sources.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
import torch

Array = Any
"""A numpy array or a torch tensor (one namespace per environment)."""


def namespace(*arrays: Array) -> Any:
    """The array API namespace of ``arrays`` (numpy's or torch's, as ``array_api_compat`` wraps
    them)."""
    return array_api_compat.array_namespace(*arrays)


def is_torch(x: object) -> bool:
    return isinstance(x, torch.Tensor)


def device_of(x: Array) -> Any:
    return array_api_compat.device(x)


_CONSTANTS: dict[tuple, torch.Tensor] = {}
"""Constants already on a device: a constant is uploaded once, not at every step."""


def const(value: object, like: Array, dtype: str | None = None) -> Array:
    """``value`` (a number, a list, a numpy array) as an array beside ``like``: its namespace
    and device, ``like``'s dtype unless ``dtype`` (``"float64"``, ``"int64"``, ``"bool"``).
    Beside a tensor the constant is made once per device and dtype and kept (do not write to
    it)."""
    if is_torch(like):
        dt = like.dtype if dtype is None else getattr(torch, dtype)
        host_value = np.asarray(value)
        key = (host_value.tobytes(), host_value.shape, host_value.dtype.str, dt, like.device)
        out = _CONSTANTS.get(key)
        if out is None:
            out = _CONSTANTS[key] = torch.as_tensor(host_value, dtype=dt, device=like.device)
        return out
    return np.asarray(value, dtype=like.dtype if dtype is None else dtype)


def take(positions: tuple[int, ...], like: Array) -> Array | list[int]:
    """An index of the fixed ``positions`` (joints, legs, links) for ``like``'s arrays: a list
    for numpy, a kept int64 tensor on the device for torch (a list would be uploaded at every
    use)."""
    if is_torch(like):
        return const(list(positions), like, "int64")
    return list(positions)


def clone(x: Array) -> Array:
    return x.clone() if is_torch(x) else x.copy()


def indices(mask: Array) -> Array:
    """The int64 indices where the 1-D ``mask`` is true (numpy's ``flatnonzero``)."""
    if is_torch(mask):
        return torch.nonzero(mask.reshape(-1)).reshape(-1)
    return np.flatnonzero(mask)


def count(x: Array) -> int:
    """Length of the first axis."""
    return int(x.shape[0])


def to_torch(x: Array) -> torch.Tensor:
    """A torch view of ``x`` (numpy: shares its memory; a tensor: itself)."""
    return x if is_torch(x) else torch.from_numpy(x)


def like_input(t: torch.Tensor, like: Array) -> Array:
    """``t`` in ``like``'s kind: itself beside a tensor, a numpy view beside a numpy array."""
    return t if is_torch(like) else t.numpy()


def host(x: Array) -> np.ndarray:
    """A numpy copy on the host (the few places that need one: the C models' randomisation)."""
    return x.detach().cpu().numpy() if is_torch(x) else np.asarray(x)


class HostRandom:
    """The environment's random draws from a ``numpy.random.Generator`` (the C backend): the
    same calls the environment made on it before it had two backends."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def random(self, shape: int | tuple[int, ...]) -> np.ndarray:
        return self.rng.random(shape)

    def uniform(self, lo: float, hi: float, shape: int | tuple[int, ...]) -> np.ndarray:
        return self.rng.uniform(lo, hi, shape)

    def integers(self, lo: int, hi: int, shape: int | tuple[int, ...]) -> np.ndarray:
        return self.rng.integers(lo, hi, shape)


class DeviceRandom:
    """The environment's random draws from a ``torch.Generator`` on the arrays' device (the Warp
    backend: no draw crosses from the host), float64 like the numpy draws."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.device = device
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(int(seed))

    def _shape(self, shape: int | tuple[int, ...]) -> tuple[int, ...]:
        return (shape,) if isinstance(shape, int) else tuple(shape)

    def random(self, shape: int | tuple[int, ...]) -> torch.Tensor:
        return torch.rand(
            self._shape(shape), generator=self.gen, dtype=torch.float64, device=self.device
        )

    def uniform(self, lo: float, hi: float, shape: int | tuple[int, ...]) -> torch.Tensor:
        return lo + (hi - lo) * self.random(shape)

    def integers(self, lo: int, hi: int, shape: int | tuple[int, ...]) -> torch.Tensor:
        return torch.randint(
            int(lo), int(hi), self._shape(shape), generator=self.gen, device=self.device
        )

    def state(self) -> torch.Tensor:
        return self.gen.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.gen.set_state(state)


class HostRandomOnDevice(HostRandom):
    """The C backend's stream (the same calls on a ``numpy.random.Generator``) handed over as
    tensors on ``device``: a Warp environment that draws exactly what a C environment of the
    same seed draws (the parity tests; replaying a CPU run), at the cost of one host-to-device
    copy per draw. Set it as ``env.rand`` before ``reset()``."""

    def __init__(self, rng: np.random.Generator, device: torch.device) -> None:
        super().__init__(rng)
        self.device = device

    def random(self, shape: int | tuple[int, ...]) -> torch.Tensor:  # type: ignore[override]
        return torch.as_tensor(super().random(shape), device=self.device)

    def uniform(  # type: ignore[override]
        self, lo: float, hi: float, shape: int | tuple[int, ...]
    ) -> torch.Tensor:
        return torch.as_tensor(super().uniform(lo, hi, shape), device=self.device)

    def integers(  # type: ignore[override]
        self, lo: int, hi: int, shape: int | tuple[int, ...]
    ) -> torch.Tensor:
        return torch.as_tensor(super().integers(lo, hi, shape), device=self.device)
