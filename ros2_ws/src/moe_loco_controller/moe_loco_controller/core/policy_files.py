"""Which shipped policy is the newest: the highest version in the file names.

Policies ship as ``policies/<name>_v<N>_<what>.onnx`` (``moe_loco_go2_v1_quad_plane.onnx``). The
newest is the one with the highest N; files without a version come before every versioned one,
and equal versions are ordered by name. File times are not used: a git checkout gives every file
the time of the checkout, so "the most recently modified" picks at random on a fresh clone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

_VERSION = re.compile(r"_v(\d+)(?:_|$)")


def policy_version(path: Path) -> int | None:
    """N of ``..._v<N>_...`` in the file's stem (the last such), or None."""
    found = _VERSION.findall(path.stem)
    return int(found[-1]) if found else None


def newest_policy(paths: Iterable[Path]) -> Path | None:
    """The newest policy among ``paths`` (see the module doc), None if there are none."""

    def key(p: Path) -> tuple[int, str]:
        v = policy_version(p)
        return (-1 if v is None else v, p.name)

    return max(paths, key=key, default=None)
