"""The one place that works around unitree-sdk2 1.0.1's packaging defects.

Unitree's own PyPI wheel (unitree-sdk2 1.0.1) has three defects (platform_notes.md):

1. ``import unitree_sdk2py`` fails: its ``__init__`` imports ``b2``, ``comm``, ``g1``, ``h1``,
   which the wheel does not carry. We register the package without running that ``__init__``,
   so its submodules (``core``, ``idl``, ``rpc``, ``utils``) import normally.
2. ``utils.crc.CRC()`` fails: its ``crc_amd64.so`` is not in the wheel. Our wire layer has its
   own fast CRC (:mod:`moe_loco_controller.io.crc`); :func:`sdk_reference_crc` gives the SDK's own
   pure-Python CRC, which tests use to check ours.
3. There is no ``MotionSwitcherClient``: :mod:`moe_loco_controller.io.motion_switcher` builds one
   on the SDK's generic RPC ``Client``.

``test/test_unitree_sdk_workaround.py`` fails when a defect disappears (the workaround is then no
longer needed) and when the workaround stops working.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import sys
import types
from typing import Any

_PKG = "unitree_sdk2py"


def _register_package() -> types.ModuleType:
    """Make ``unitree_sdk2py`` importable without executing its broken ``__init__``."""
    mod = sys.modules.get(_PKG)
    if mod is not None:
        return mod
    spec = importlib.util.find_spec(_PKG)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "unitree_sdk2py is not installed: run scripts/setup.sh "
            "(it installs cyclonedds 0.10.2 and unitree-sdk2 1.0.1 --no-deps)"
        )
    mod = types.ModuleType(_PKG)
    mod.__path__ = list(spec.submodule_search_locations)
    mod.__spec__ = spec
    mod.__file__ = spec.origin
    mod.__package__ = _PKG
    sys.modules[_PKG] = mod
    return mod


class _Sdk:
    """Lazy access to the SDK's submodules, after the package is registered."""

    def __init__(self) -> None:
        _register_package()
        core_channel = importlib.import_module(f"{_PKG}.core.channel")
        go_msgs = importlib.import_module(f"{_PKG}.idl.unitree_go.msg.dds_")
        default = importlib.import_module(f"{_PKG}.idl.default")
        self.ChannelFactoryInitialize = core_channel.ChannelFactoryInitialize
        self.ChannelFactory = core_channel.ChannelFactory
        self.ChannelPublisher = core_channel.ChannelPublisher
        self.ChannelSubscriber = core_channel.ChannelSubscriber
        self.LowState_ = go_msgs.LowState_
        self.LowCmd_ = go_msgs.LowCmd_
        self.default_LowState = default.unitree_go_msg_dds__LowState_
        self.default_LowCmd = default.unitree_go_msg_dds__LowCmd_
        self.rpc_client = importlib.import_module(f"{_PKG}.rpc.client")
        self.rpc_internal = importlib.import_module(f"{_PKG}.rpc.internal")


_sdk: _Sdk | None = None


def __getattr__(name: str) -> Any:
    # ``from moe_loco_controller.io.unitree_sdk import sdk`` imports the SDK on first use only,
    # so modules that merely mention the wire layer stay importable without CycloneDDS.
    global _sdk
    if name == "sdk":
        if _sdk is None:
            _sdk = _Sdk()
        return _sdk
    raise AttributeError(name)


def sdk_reference_crc(msg: Any) -> int:
    """The SDK's own CRC of a LowCmd_/LowState_, computed by its pure-Python code path.

    ``CRC()`` loads a shared library only when ``platform.system() == "Linux"``, and that library
    is missing from the wheel; on other platforms it uses ``_crc_py``. We construct it as if on
    another platform, so its packing and its CRC are exactly the SDK's. About 1 ms per call:
    for tests, never for the control path.
    """
    _register_package()
    crc_mod = importlib.import_module(f"{_PKG}.utils.crc")
    real_system = platform.system
    platform.system = lambda: "Pure-Python"  # type: ignore[assignment]
    try:
        crc_mod.CRC._Singleton__instance = None  # the SDK's CRC is a singleton
        crc = crc_mod.CRC()
    finally:
        platform.system = real_system  # type: ignore[assignment]
        crc_mod.CRC._Singleton__instance = None
    return int(crc.Crc(msg))
