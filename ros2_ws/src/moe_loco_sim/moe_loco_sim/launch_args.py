"""The sim bridge's command line as the sim-to-sim launch file builds it, in one place.

``launch/sim.launch.py`` (and ``moe_loco_sim``'s own ``sim.launch.py``) call
:func:`bridge_arguments`; the tests parse its result with ``moe-loco-sim``'s own parser, so the
launch file and the bridge cannot drift apart (``ros2 launch`` cannot run on machines without ROS).
"""

from __future__ import annotations

from typing import Any

SIM_LAUNCH_ARGUMENTS = {
    "terrain": ("plane", "terrain: plane, mixed (Table II runway) or a 30 m single-task track"),
    "contact": ("menagerie", "contact preset: menagerie (sim-to-sim) or cheap (training)"),
    "viewer": ("false", "true: MuJoCo's live viewer (needs a display)"),
}
"""Launch argument -> (default, description), beside the controller's (its ``sim`` is forced)."""


def bridge_arguments(values: dict[str, Any]) -> list[Any]:
    """``moe-loco-sim`` arguments: the simulator's link (domain 1 on ``lo``) and the scene."""
    out: list[Any] = ["--terrain", values["terrain"], "--contact", values["contact"]]
    out += ["--domain", "1", "--interface", "lo"]
    if str(values.get("viewer", "false")).lower() == "true":
        out.append("--viewer")
    return out
