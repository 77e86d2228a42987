"""A scripted robot motion switcher for tests (Unitree SDK RPC server on CycloneDDS).

    python motion_switcher_peer.py DOMAIN IFACE --mode normal --releases-needed 2 --duration 20

Answers CheckMode with the active mode's name until it has received ``--releases-needed``
ReleaseMode calls (a negative number: never releases), then with an empty name.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time

from moe_loco_controller.io import motion_switcher as ms
from moe_loco_controller.io.lowlevel import init_channels


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("domain", type=int)
    ap.add_argument("iface")
    ap.add_argument("--mode", default="normal")
    ap.add_argument("--releases-needed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=20.0)
    a = ap.parse_args()
    init_channels(a.domain, a.iface)
    server_mod = importlib.import_module("unitree_sdk2py.rpc.server")  # after the SDK is registered
    state = {"name": a.mode, "releases": 0}

    def check(_param: str) -> tuple[int, str]:
        return 0, json.dumps({"form": "0", "name": state["name"]})

    def release(_param: str) -> tuple[int, str]:
        state["releases"] += 1
        if 0 <= a.releases_needed <= state["releases"]:
            state["name"] = ""
        return 0, ""

    def select(param: str) -> tuple[int, str]:
        state["name"] = json.loads(param)["name"]
        return 0, ""

    server = server_mod.Server(ms.SERVICE_NAME)
    server._SetApiVersion(ms.API_VERSION)
    server._RegistHandler(ms.API_CHECK_MODE, check, False)
    server._RegistHandler(ms.API_RELEASE_MODE, release, False)
    server._RegistHandler(ms.API_SELECT_MODE, select, False)
    server.Start(False)
    print("ready", flush=True)
    parent = os.getppid()
    start = time.monotonic()
    while time.monotonic() - start < a.duration and os.getppid() == parent:
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
