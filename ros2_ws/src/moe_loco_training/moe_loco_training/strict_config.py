"""Strict loading of configuration dataclasses from parsed YAML, shared by every config file of
the training package (``env.yaml``, ``benchmark.yaml``, ``train*.yaml``).

Unknown keys, wrong types, non-finite numbers and the dataclasses' own ``ValueError`` s become
the caller's error class with the dotted path of the field (``rewards.weights.bipedal.foo:
unknown reward term``). Mappings come back read-only (``MappingProxyType``), lists as tuples.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class StrictLoader:
    """Builds dataclasses from mappings, raising ``error`` (a ``ValueError`` subclass).

    ``none_is_empty``: a YAML ``null`` where a mapping is expected counts as ``{}`` (an empty
    table written ``key:``), else it is an error.
    """

    def __init__(self, error: type[ValueError], none_is_empty: bool = False) -> None:
        self.error = error
        self.none_is_empty = none_is_empty

    def coerce(self, value: Any, tp: Any, where: str) -> Any:
        err = self.error
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if tp is Any:
            return value
        if origin in (typing.Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            (inner,) = [a for a in args if a is not type(None)]
            return self.coerce(value, inner, where)
        if dataclasses.is_dataclass(tp):
            return self.build(tp, value, where)
        if tp is bool:
            if not isinstance(value, bool):
                raise err(f"{where}: expected true or false, got {value!r}")
            return value
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise err(f"{where}: expected an integer, got {value!r}")
            return value
        if tp is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise err(f"{where}: expected a number, got {value!r}")
            if not math.isfinite(value):
                raise err(f"{where}: expected a finite number, got {value!r}")
            return float(value)
        if tp is str:
            if not isinstance(value, str):
                raise err(f"{where}: expected a string, got {value!r}")
            return value
        if origin is tuple:
            if not isinstance(value, list | tuple):
                raise err(f"{where}: expected a list, got {value!r}")
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(self.coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
            if len(value) != len(args):
                raise err(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(
                self.coerce(v, a, f"{where}[{i}]")
                for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        if origin in (Mapping, dict, typing.Mapping):
            if value is None and self.none_is_empty:
                value = {}
            if not isinstance(value, Mapping):
                raise err(f"{where}: expected a mapping, got {value!r}")
            return MappingProxyType(
                {str(k): self.coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
            )
        raise AssertionError(f"{where}: unsupported type {tp}")

    def build(self, cls: type, data: Any, where: str = "") -> Any:
        err = self.error
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise err(f"{where or 'config'}: expected a mapping, got {data!r}")
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        prefix = f"{where}." if where else ""
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise err(f"{prefix}{unknown[0]}: unknown key (known: {names})")
        kwargs = {k: self.coerce(v, hints[k], f"{prefix}{k}") for k, v in data.items()}
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise err(f"{where or 'config'}: {e}") from None
        except ValueError as e:
            if isinstance(e, err):
                raise
            # messages that start with a field path (tasks.x: ...) keep it
            raise err(f"{prefix}{e}" if where else str(e)) from None
