"""Deadline-driven periodic loops (no ROS): the controller's 50 Hz loop and its command stream.

:class:`DeadlineLoop` schedules tick k at ``t0 + k * period`` (absolute times, so errors never
accumulate), sleeps until shortly before the deadline and spins the last ``spin_s``. A tick that
overruns skips the deadlines it missed instead of bursting to catch up. :func:`naive_loop` is the
"compute, then sleep(period)" loop that drifts by the compute time every tick; it exists so the
benchmark can show the difference side by side.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoopStats:
    """Per-tick measurements: actual period, lateness against the deadline, compute time [s]."""

    period: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    compute: list[float] = field(default_factory=list)
    overruns: int = 0
    max_samples: int = 200_000

    def add(self, period: float, lateness: float, compute: float) -> None:
        if len(self.period) < self.max_samples:
            self.period.append(period)
            self.lateness.append(lateness)
            self.compute.append(compute)

    def summary(self, nominal: float) -> dict[str, float]:
        """p50/p99/max [ms] of |period - nominal| and of compute time, and the achieved rate."""
        per = np.asarray(self.period[1:]) if len(self.period) > 1 else np.zeros(1)
        err = np.abs(per - nominal) * 1e3
        comp = np.asarray(self.compute or [0.0]) * 1e3
        return {
            "period_err_p50_ms": float(np.percentile(err, 50)),
            "period_err_p99_ms": float(np.percentile(err, 99)),
            "period_err_max_ms": float(err.max()),
            "step_p50_ms": float(np.percentile(comp, 50)),
            "step_p99_ms": float(np.percentile(comp, 99)),
            "step_max_ms": float(comp.max()),
            "rate_hz": float(1.0 / per.mean()) if per.mean() > 0 else 0.0,
            "overruns": float(self.overruns),
        }


class DeadlineLoop:
    """Calls ``tick(deadline, lateness)`` every ``period`` seconds on absolute deadlines."""

    def __init__(
        self,
        period: float,
        tick: Callable[[float, float], None],
        clock: Callable[[], float] = time.monotonic,
        spin_s: float = 0.0002,
        stats: LoopStats | None = None,
    ) -> None:
        if not period > 0:
            raise ValueError(f"period must be > 0, got {period}")
        self.period = period
        self.tick = tick
        self.clock = clock
        self.spin_s = spin_s
        self.stats = stats if stats is not None else LoopStats()

    def run(self, stop: threading.Event, max_ticks: int | None = None) -> None:
        clock, period = self.clock, self.period
        t0 = clock()
        k = 0
        last_start: float | None = None
        ticks = 0
        while not stop.is_set() and (max_ticks is None or ticks < max_ticks):
            k += 1
            deadline = t0 + k * period
            remaining = deadline - clock()
            # Event.wait wakes at once on stop; the spin absorbs the sleep's wake-up jitter
            if remaining > self.spin_s and stop.wait(remaining - self.spin_s):
                break
            while clock() < deadline:
                pass
            start = clock()
            self.tick(deadline, start - deadline)
            end = clock()
            if last_start is not None:
                self.stats.add(start - last_start, start - deadline, end - start)
            else:
                self.stats.add(period, start - deadline, end - start)
            last_start = start
            ticks += 1
            missed = int((end - t0) / period) - k
            if missed > 0:  # overran: skip the missed deadlines rather than burst
                self.stats.overruns += 1
                k += missed


def naive_loop(
    period: float,
    tick: Callable[[float, float], None],
    stop: threading.Event,
    max_ticks: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    stats: LoopStats | None = None,
) -> LoopStats:
    """Compute, then ``sleep(period)``: the loop not to write (for the benchmark)."""
    stats = stats if stats is not None else LoopStats()
    last_start: float | None = None
    ticks = 0
    while not stop.is_set() and (max_ticks is None or ticks < max_ticks):
        start = clock()
        tick(start, 0.0)
        end = clock()
        stats.add(period if last_start is None else start - last_start, 0.0, end - start)
        last_start = start
        ticks += 1
        time.sleep(period)
    return stats
