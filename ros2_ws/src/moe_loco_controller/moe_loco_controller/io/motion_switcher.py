"""Release the Go2's built-in sport controller before low-level control.

unitree-sdk2 1.0.1 (Python) has no MotionSwitcherClient; this is one, on the SDK's generic RPC
``Client``, speaking the service of Unitree's C++ SDK: service ``motion_switcher`` (DDS topics
``rt/api/motion_switcher/{request,response}``), API version 1.0.0.1, CheckMode 1001 (reply
``{"form": ..., "name": ...}``, an empty name when no controller is active), SelectMode 1002,
ReleaseMode 1003.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from moe_loco_controller.io.unitree_sdk import sdk

SERVICE_NAME = "motion_switcher"
API_VERSION = "1.0.0.1"
API_CHECK_MODE = 1001
API_SELECT_MODE = 1002
API_RELEASE_MODE = 1003


class MotionSwitcherError(RuntimeError):
    """The motion switcher did not answer, answered an error, or would not release."""


@dataclass(frozen=True)
class ModeInfo:
    form: str
    name: str

    @property
    def active(self) -> bool:
        """True while a built-in controller (sport mode, ...) holds the motors."""
        return bool(self.name)


class MotionSwitcherClient:
    """Client of the robot's motion switcher service (needs :func:`init_channels` first)."""

    def __init__(self, timeout_s: float = 1.0) -> None:
        client_cls = sdk.rpc_client.Client

        class _Client(client_cls):  # the SDK registers APIs from inside the class
            def __init__(self) -> None:
                super().__init__(SERVICE_NAME, False)

            def Init(self) -> None:  # noqa: N802 (SDK naming)
                self._SetApiVerson(API_VERSION)
                for api in (API_CHECK_MODE, API_SELECT_MODE, API_RELEASE_MODE):
                    self._RegistApi(api, 0)

        self._client = _Client()
        self._client.SetTimeout(timeout_s)
        self._client.Init()

    def _call(self, api: int, parameter: dict) -> str:
        code, data = self._client._Call(api, json.dumps(parameter))
        if code != 0:
            raise MotionSwitcherError(f"motion switcher API {api} failed with code {code}")
        return data or ""

    def check_mode(self) -> ModeInfo:
        data = self._call(API_CHECK_MODE, {})
        try:
            d = json.loads(data)
            return ModeInfo(form=str(d.get("form", "")), name=str(d.get("name", "")))
        except (json.JSONDecodeError, AttributeError) as e:
            raise MotionSwitcherError(f"CheckMode returned unreadable data {data!r}") from e

    def release_mode(self) -> None:
        self._call(API_RELEASE_MODE, {})

    def select_mode(self, name: str) -> None:
        self._call(API_SELECT_MODE, {"name": name})


def release_sport_mode(
    client: MotionSwitcherClient,
    attempts: int = 10,
    interval_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = lambda _msg: None,
) -> ModeInfo:
    """ReleaseMode until CheckMode reports no active controller; raise if it never does."""
    info = client.check_mode()
    for _ in range(attempts):
        if not info.active:
            return info
        log(f"releasing built-in controller '{info.name}'")
        client.release_mode()
        sleep(interval_s)
        info = client.check_mode()
    if info.active:
        raise MotionSwitcherError(
            f"built-in controller '{info.name}' still active after {attempts} releases"
        )
    return info
