"""Name-based mapping between joint orders (SDK order on the wire, the policy's own order).

A wrong joint map is the most reported sim-to-real bug in this field; this module is the only
place that permutes joint arrays, and it only ever does so by name.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from moe_loco_controller.core.go2 import JOINT_NAMES


class JointOrderError(ValueError):
    """Two joint orders that cannot be mapped onto each other."""


class JointOrder:
    """Permutation between a source order and the SDK order, built from joint names.

    ``to_sdk(x)`` takes an array in the source order and returns it in SDK order;
    ``from_sdk(y)`` does the inverse. Arrays may carry leading batch dimensions.
    """

    def __init__(self, names: Sequence[str], sdk_names: Sequence[str] = JOINT_NAMES) -> None:
        names = list(names)
        sdk_names = list(sdk_names)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise JointOrderError(f"duplicate joint names: {dup}")
        unknown = [n for n in names if n not in sdk_names]
        missing = [n for n in sdk_names if n not in names]
        if unknown or missing:
            raise JointOrderError(
                f"joint names do not match the Go2's: unknown {unknown}, missing {missing}"
            )
        self.names = tuple(names)
        self.sdk_names = tuple(sdk_names)
        # to_sdk: sdk[i] = src[src_index_of[sdk_names[i]]]
        self._to_sdk = np.array([names.index(n) for n in sdk_names], dtype=np.intp)
        self._from_sdk = np.array([sdk_names.index(n) for n in names], dtype=np.intp)

    @property
    def is_identity(self) -> bool:
        return bool(np.all(self._to_sdk == np.arange(len(self._to_sdk))))

    @property
    def to_sdk_index(self) -> np.ndarray:
        """Index array ``idx`` with ``sdk_array = src_array[..., idx]``."""
        return self._to_sdk.copy()

    def to_sdk(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        self._check(x)
        return x[..., self._to_sdk]

    def from_sdk(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        self._check(y)
        return y[..., self._from_sdk]

    def _check(self, x: np.ndarray) -> None:
        if x.shape[-1:] != (len(self.names),):
            raise JointOrderError(
                f"expected a last dimension of {len(self.names)} joints, got shape {x.shape}"
            )
