"""The Go2 remote's ``wireless_remote`` bytes (LowState_ carries 40 of them).

Layout (go2_facts.md): head[2], keys u16 at bytes 2..3, then float32 lx at 4, rx at 8, ry at 12,
L2 at 16, ly at 20, little-endian.
"""

from __future__ import annotations

import struct

import numpy as np

from moe_loco_controller.core.go2 import REMOTE_KEYS

REMOTE_BYTES = 40
AXES = ("lx", "ly", "rx", "ry", "L2")
"""Order of :func:`parse_remote`'s axes array (and of RobotState.msg ``remote_axes``)."""
_OFFSETS = {"lx": 4, "rx": 8, "ry": 12, "L2": 16, "ly": 20}


def parse_remote(data: bytes | bytearray | list[int]) -> tuple[int, np.ndarray]:
    """Keys bitfield and axes (lx, ly, rx, ry, L2) from the 40 remote bytes."""
    b = bytes(bytearray(data))
    if len(b) != REMOTE_BYTES:
        raise ValueError(f"wireless_remote must be {REMOTE_BYTES} bytes, got {len(b)}")
    keys = struct.unpack_from("<H", b, 2)[0]
    axes = np.array([struct.unpack_from("<f", b, _OFFSETS[a])[0] for a in AXES], dtype=np.float64)
    return int(keys), axes


def pack_remote(keys: int = 0, axes: np.ndarray | None = None) -> bytes:
    """The 40 remote bytes for a keys bitfield and axes (lx, ly, rx, ry, L2): for sims and tests."""
    buf = bytearray(REMOTE_BYTES)
    struct.pack_into("<H", buf, 2, keys & 0xFFFF)
    if axes is not None:
        for name, value in zip(AXES, axes, strict=True):
            struct.pack_into("<f", buf, _OFFSETS[name], float(value))
    return bytes(buf)


def key_pressed(keys: int, name: str) -> bool:
    """Whether the named key (``"A"``, ``"start"``, ``"L1"``, ...) is down in a keys bitfield."""
    try:
        return bool(keys >> REMOTE_KEYS[name] & 1)
    except KeyError:
        raise ValueError(f"unknown remote key {name!r}; known: {sorted(REMOTE_KEYS)}") from None
