"""What the controller reports on ``/diagnostics`` once a second (no ROS here).

:func:`controller_diagnostics` turns one second of the node's measurements into four entries, the
shape of ``diagnostic_msgs/DiagnosticStatus`` (name, level, message, key/values), so that
``rqt_robot_monitor``, Foxglove or a diagnostic aggregator show the controller's health:

- ``moe_loco: mode``: the mode, gait and faults (latched in DAMP, present otherwise). ERROR in DAMP
  or with a fault present; OK otherwise.
- ``moe_loco: control loop``: the achieved period, its error against the deadline and the step's
  compute time over the window, overruns. WARN when the window had an overrun or no step.
- ``moe_loco: robot link``: the robot-state age, CRC errors (total and in the window), the link's
  own faults, LowCmd_ watchdog trips and send errors. ERROR with a link fault, a stale state or a
  watchdog trip in the window; WARN with CRC errors in the window; OK otherwise.
- ``moe_loco: policy``: which policy runs (file, contract version, training revision, stage and
  iterations, experts, control period) and the expert scale. Always OK.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from moe_loco_controller.core.controller import CoreStatus, Mode
from moe_loco_controller.core.policy_metadata import PolicyMetadata

OK, WARN, ERROR, STALE = 0, 1, 2, 3
"""``diagnostic_msgs/DiagnosticStatus`` levels."""

HARDWARE_ID = "unitree_go2"


@dataclass(frozen=True)
class DiagnosticEntry:
    name: str
    level: int
    message: str
    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class LinkHealth:
    """The robot link over the window (``kind``: unitree or mirror)."""

    kind: str
    state_age_s: float
    stale_limit_s: float
    bad_crc_total: int = 0
    bad_crc_new: int = 0
    zero_crc_new: int = 0
    """Of the window's bad-CRC frames, those with the CRC field 0 (Unitree's simulator)."""
    crc_check: str = "verify"
    faults: tuple[tuple[str, str], ...] = ()
    watchdog_trips_total: int = 0
    watchdog_trips_new: int = 0
    send_errors_total: int = 0


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}" if math.isfinite(seconds) else "inf"


def controller_diagnostics(
    status: CoreStatus | None,
    metadata: PolicyMetadata,
    policy_name: str,
    periods_s: Sequence[float],
    lateness_s: Sequence[float],
    compute_s: Sequence[float],
    overruns_total: int,
    overruns_new: int,
    link: LinkHealth,
    velocity_source: str = "none",
) -> list[DiagnosticEntry]:
    """The four entries (see the module docstring); ``periods_s`` etc. are the window's ticks."""
    entries = [_mode_entry(status, metadata, velocity_source)]
    entries.append(
        _loop_entry(
            metadata.control_dt, periods_s, lateness_s, compute_s, overruns_total, overruns_new
        )
    )
    entries.append(_link_entry(link))
    entries.append(_policy_entry(status, metadata, policy_name))
    return entries


def _mode_entry(
    status: CoreStatus | None, metadata: PolicyMetadata, velocity_source: str
) -> DiagnosticEntry:
    name = "moe_loco: mode"
    if status is None:
        return DiagnosticEntry(name, STALE, "no control step yet", ())
    faults = tuple(zip(status.faults, status.fault_details, strict=False))
    gait = metadata.gaits[status.gait] if 0 <= status.gait < len(metadata.gaits) else "?"
    values = [
        ("mode", status.mode.name),
        ("gait", gait),
        ("step", str(status.step)),
        ("faults", ", ".join(status.faults) or "none"),
        *((f"fault {f}", d) for f, d in faults),
        ("velocity command", " ".join(f"{v:.3f}" for v in status.command)),
        ("velocity source", velocity_source),
        ("stand progress", f"{status.stand_progress:.2f}"),
    ]
    if status.mode == Mode.DAMP:
        level = ERROR
        message = "DAMP (latched): " + ("; ".join(f"{f} ({d})" for f, d in faults) or "no fault")
    elif faults:
        level = ERROR
        message = f"{status.mode.name}, faults present: " + "; ".join(f for f, _ in faults)
    else:
        level, message = OK, status.mode.name
    return DiagnosticEntry(name, level, message, tuple(values))


def _stats(values: Sequence[float]) -> tuple[float, float, float]:
    if not len(values):
        return math.nan, math.nan, math.nan
    a = np.asarray(values, dtype=np.float64)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.max())


def _loop_entry(
    dt: float,
    periods_s: Sequence[float],
    lateness_s: Sequence[float],
    compute_s: Sequence[float],
    overruns_total: int,
    overruns_new: int,
) -> DiagnosticEntry:
    finite = [p for p in periods_s if math.isfinite(p)]
    rate = len(finite) / sum(finite) if finite and sum(finite) > 0 else 0.0
    p50, _, pmax = _stats(finite)
    l50, l99, lmax = _stats(lateness_s)
    c50, c99, cmax = _stats(compute_s)
    values = (
        ("rate [Hz]", f"{rate:.1f}"),
        ("nominal rate [Hz]", f"{1.0 / dt:.1f}"),
        ("steps in window", str(len(compute_s))),
        ("period p50 / max [ms]", f"{_ms(p50)} / {_ms(pmax)}"),
        ("lateness p50 / p99 / max [ms]", f"{_ms(l50)} / {_ms(l99)} / {_ms(lmax)}"),
        ("compute p50 / p99 / max [ms]", f"{_ms(c50)} / {_ms(c99)} / {_ms(cmax)}"),
        ("overruns (total)", str(overruns_total)),
        ("overruns (window)", str(overruns_new)),
    )
    if not compute_s:
        return DiagnosticEntry("moe_loco: control loop", WARN, "no control step", values)
    if overruns_new:
        message = f"{overruns_new} overrun(s) in the window, {rate:.1f} Hz"
        return DiagnosticEntry("moe_loco: control loop", WARN, message, values)
    return DiagnosticEntry("moe_loco: control loop", OK, f"{rate:.1f} Hz", values)


def _link_entry(link: LinkHealth) -> DiagnosticEntry:
    values = (
        ("source", link.kind),
        ("state age [ms]", _ms(link.state_age_s)),
        ("stale limit [ms]", _ms(link.stale_limit_s)),
        ("CRC check", link.crc_check),
        ("CRC errors (total)", str(link.bad_crc_total)),
        ("CRC errors (window)", str(link.bad_crc_new)),
        ("link faults", ", ".join(f for f, _ in link.faults) or "none"),
        *((f"link fault {f}", d) for f, d in link.faults),
        ("LowCmd_ watchdog trips (total)", str(link.watchdog_trips_total)),
        ("LowCmd_ send errors (total)", str(link.send_errors_total)),
    )
    name = "moe_loco: robot link"
    problems = [f for f, _ in link.faults]
    if not link.state_age_s <= link.stale_limit_s:
        problems.append(f"robot state stale ({_ms(link.state_age_s)} ms)")
    if link.watchdog_trips_new:
        problems.append(f"{link.watchdog_trips_new} LowCmd_ watchdog trip(s)")
    if problems:
        return DiagnosticEntry(name, ERROR, "; ".join(problems), values)
    if link.bad_crc_new:
        message = f"{link.bad_crc_new} CRC error(s) in the window"
        if link.zero_crc_new == link.bad_crc_new:
            message += (
                " (all with crc 0, as Unitree's MuJoCo simulator sends: on a simulator link, "
                "set link.crc: off)"
            )
        return DiagnosticEntry(name, WARN, message, values)
    if link.crc_check == "off":
        return DiagnosticEntry(name, OK, f"{link.kind}: state fresh (CRC check off: sim)", values)
    return DiagnosticEntry(name, OK, f"{link.kind}: state fresh", values)


def _policy_entry(
    status: CoreStatus | None, metadata: PolicyMetadata, policy_name: str
) -> DiagnosticEntry:
    t = metadata.training
    values = [
        ("file", policy_name),
        ("contract version", str(metadata.contract_version)),
        ("code revision", str(t.get("code_revision", ""))),
        ("stage", str(t.get("stage", ""))),
        ("iterations", str(t.get("iterations", ""))),
        ("simulator", str(t.get("simulator", ""))),
        ("experts", str(metadata.num_experts)),
        ("gaits", ", ".join(metadata.gaits)),
        ("control period [ms]", _ms(metadata.control_dt)),
    ]
    if status is not None:
        values.append(("expert scale", " ".join(f"{w:g}" for w in status.expert_scale)))
        values.append(("gate weights", " ".join(f"{w:.3f}" for w in status.gate)))
    return DiagnosticEntry("moe_loco: policy", OK, policy_name, tuple(values))
