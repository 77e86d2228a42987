"""The paper's benchmark terrain (Table II) from box geoms (baffles overhang: no heightfield).

A track runs along +x from ``x = 0`` to ``x = length``, centred on ``y = 0``, ``width`` wide; the
walking surface starts at ``z = 0``. It is laid out from a :class:`TrackConfig`: a lead-in where the
robot spawns, then the obstacles of each :class:`SectionSpec` in order, evenly spaced (equal flat
gaps before, between and after them), then a flat finish holding the target point.

What the paper leaves open and is decided here (all in :class:`ObstacleGeometry` and
:class:`TrackConfig`, mirrored in ``config/terrain.yaml``):

- Bars span the full width and are ``bar_depth`` = 0.10 m long along x.
- Pits span the full width; their floor lies ``pit_depth`` = 0.40 m below the rim (about one leg
  length: a leg that drops in reaches the floor with the body at the rim, so the robot is stuck,
  not lost).
- Baffles are beams spanning the full width, ``baffle_thickness`` = 0.10 m along x and
  ``baffle_height`` = 0.40 m tall above their clearance. They float (static geoms need no posts).
- Stairs: a set is ``stair_steps`` = 4 risers of ``stair_tread`` = 0.30 m treads. Quadrupedal sets
  go up, cross a ``stair_landing`` = 1.5 m landing and come down the same steps ("up_down"); the
  bipedal sets only go down ("down"), so the bipedal end of the mixed runway is sunken
  (0.05 + 0.10 + 0.15 m × 4 = 1.2 m below the start).
- Slopes: a set is a ramp of ``slope_run`` = 1.5 m horizontal run, a ``slope_landing`` = 1.5 m top,
  and a ramp down at the same angle ("up_down"); 35° over 1.5 m rises 1.05 m.
- Obstacle counts and values: Table II's ranges evenly spaced (bars 0.05..0.2 m ×5, pits 0.05..0.2 m
  ×5, baffles 0.30..0.22 m ×5, steps 0.05/0.10/0.15 m, slopes 10/22.5/35°), easiest first.
- The single-task tracks (30 m) carry the same obstacle set as the matching runway section, spread
  evenly over the track; the plane tracks hold a 20 m ``plane`` section.
- No side walls: the runway is a raised platform. A robot that leaves it drops onto the catch
  plane ``drop_depth`` = 0.5 m below the lowest surface (which also lies under the pits' floors)
  and cannot come back. The benchmark detects "off the runway" with
  :meth:`TerrainDescription.is_off_runway` (base outside the runway's x/y bounds); the base falling
  below :meth:`TerrainDescription.surface_height` shows it too.
- The target is on the centre line, ``target_margin`` = 1.5 m before the end; success is within
  ``success_radius`` = 1 m of it (paper).

Each builder returns a :class:`Terrain`: the geoms, and a :class:`TerrainDescription` (segments with
x-start/x-end, kind, task, parameter, gait; spawn and target points) that the benchmark uses to pick
the gait per section and to judge success.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import mujoco
import yaml

QUADRUPEDAL = "quadrupedal"
BIPEDAL = "bipedal"
GAIT_INDEX = {QUADRUPEDAL: 0, BIPEDAL: 1}
"""Gait one-hot index as the policy sees it (paper: g = 0 quadrupedal, g = 1 bipedal)."""

SECTION_KINDS = ("bar", "pit", "baffle", "stairs", "slope", "plane")
DIRECTIONS = ("up_down", "up", "down")

UNITS = {"bar": "m", "pit": "m", "baffle": "m", "stairs": "m", "slope": "deg", "plane": "m"}
"""Unit of a section's values: bar height, pit width, baffle clearance, step height, slope angle,
plane length."""

TASKS = {
    "bar": "bar",
    "pit": "pit",
    "baffle": "baffle",
    "stairs": "stair",
    "slope": "slope",
    "plane": "plane",
}
"""Task label (a column of the paper's Table I, with the gait) of each section kind."""


# ----------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class ObstacleGeometry:
    """Dimensions Table II does not state (see the module docstring for the reasons)."""

    bar_depth: float = 0.10
    pit_depth: float = 0.40
    baffle_thickness: float = 0.10
    baffle_height: float = 0.40
    stair_tread: float = 0.30
    stair_steps: int = 4
    stair_landing: float = 1.50
    slope_run: float = 1.50
    slope_landing: float = 1.50
    ramp_thickness: float = 0.20
    pit_floor_thickness: float = 0.10


@dataclass(frozen=True)
class SectionSpec:
    """A run of obstacles of one kind, one per value, crossed in one gait."""

    kind: str
    """``bar``, ``pit``, ``baffle``, ``stairs``, ``slope`` or ``plane``."""
    gait: str
    """``quadrupedal`` or ``bipedal``."""
    values: tuple[float, ...]
    """Per obstacle: bar height, pit width, baffle clearance, step height [m]; slope angle [deg];
    plane length [m]."""
    direction: str = "up_down"
    """Stairs and slopes: ``up_down`` (up, landing, down), ``up`` or ``down``."""

    def __post_init__(self) -> None:
        if self.kind not in SECTION_KINDS:
            raise ValueError(f"section kind {self.kind!r} is not one of {SECTION_KINDS}")
        if self.gait not in GAIT_INDEX:
            raise ValueError(f"section gait {self.gait!r} is not one of {tuple(GAIT_INDEX)}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"section direction {self.direction!r} is not one of {DIRECTIONS}")
        if not self.values or any(not (v > 0 and math.isfinite(v)) for v in self.values):
            raise ValueError(f"{self.kind} section needs positive finite values, got {self.values}")
        if self.kind == "slope" and any(v >= 90 for v in self.values):
            raise ValueError(f"slope angles must be below 90 deg, got {self.values}")


@dataclass(frozen=True)
class TrackConfig:
    """One track: a runway of ``length`` × ``width`` metres holding ``sections`` in order."""

    name: str
    length: float
    sections: tuple[SectionSpec, ...]
    width: float = 5.0
    lead_in: float = 2.0
    """Flat start; the robot spawns in its middle."""
    finish: float = 3.0
    """Flat end holding the target."""
    target_margin: float = 1.5
    """Target distance before the end of the track [m]."""
    success_radius: float = 1.0
    drop_depth: float = 0.5
    """Catch plane depth below the lowest walking surface [m]."""
    min_gap: float = 0.8
    """Shortest flat allowed between obstacles; a config that does not fit is refused."""
    friction: float = 1.0
    """Sliding friction of the terrain geoms (the feet have priority: their own friction wins)."""
    geometry: ObstacleGeometry = field(default_factory=ObstacleGeometry)

    @staticmethod
    def from_dict(
        name: str, data: Mapping[str, Any], geometry: ObstacleGeometry | None = None
    ) -> TrackConfig:
        """Build from a YAML mapping; ``geometry`` is the file-wide default for missing keys."""
        known = {f.name for f in fields(TrackConfig)} - {"name"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"track {name!r}: unknown keys {sorted(unknown)}")
        base = geometry or ObstacleGeometry()
        geo = dict(asdict(base), **data.get("geometry", {}))
        kwargs = {k: v for k, v in data.items() if k not in ("sections", "geometry")}
        sections = tuple(
            SectionSpec(
                kind=s["kind"],
                gait=s["gait"],
                values=tuple(float(v) for v in s["values"]),
                direction=s.get("direction", "up_down"),
            )
            for s in data["sections"]
        )
        return TrackConfig(name=name, sections=sections, geometry=ObstacleGeometry(**geo), **kwargs)


def _section(
    kind: str, gait: str, values: Sequence[float], direction: str = "up_down"
) -> SectionSpec:
    return SectionSpec(kind, gait, tuple(float(v) for v in values), direction)


def _spread(lo: float, hi: float, n: int) -> tuple[float, ...]:
    return tuple(round(lo + (hi - lo) * i / (n - 1), 6) for i in range(n))


BAR_HEIGHTS = _spread(0.05, 0.20, 5)
PIT_WIDTHS = _spread(0.05, 0.20, 5)
BAFFLE_CLEARANCES = _spread(0.30, 0.22, 5)
STEP_HEIGHTS = (0.05, 0.10, 0.15)
SLOPE_ANGLES = (10.0, 22.5, 35.0)

_Q, _B = QUADRUPEDAL, BIPEDAL
MIXED_SECTIONS = (
    _section("bar", _Q, BAR_HEIGHTS),
    _section("pit", _Q, PIT_WIDTHS),
    _section("baffle", _Q, BAFFLE_CLEARANCES),
    _section("stairs", _Q, STEP_HEIGHTS, "up_down"),
    _section("slope", _Q, SLOPE_ANGLES, "up_down"),
    _section("plane", _B, (10.0,)),
    _section("slope", _B, SLOPE_ANGLES, "up_down"),
    _section("stairs", _B, STEP_HEIGHTS, "down"),
)
"""Table II, in its order: quadrupedal obstacles, then the 10 m bipedal plane (where the robot
stands up), bipedal slopes and bipedal down stairs."""

SINGLE_TRACK_LENGTH = 30.0


def default_track_configs() -> dict[str, TrackConfig]:
    """The mixed runway (``mixed``) and the 30 m single-task tracks (Table I's column names)."""
    single = {
        "bar_q": (MIXED_SECTIONS[0],),
        "pit_q": (MIXED_SECTIONS[1],),
        "baffle_q": (MIXED_SECTIONS[2],),
        "stair_q": (MIXED_SECTIONS[3],),
        "slope_q": (MIXED_SECTIONS[4],),
        "plane_q": (_section("plane", _Q, (20.0,)),),
        "walk_b": (_section("plane", _B, (20.0,)),),
        "slope_b": (MIXED_SECTIONS[6],),
        "stair_b": (MIXED_SECTIONS[7],),
    }
    configs = {"mixed": TrackConfig(name="mixed", length=100.0, sections=MIXED_SECTIONS)}
    for name, sections in single.items():
        configs[name] = TrackConfig(name=name, length=SINGLE_TRACK_LENGTH, sections=sections)
    return configs


def load_track_configs(path: str | Path) -> dict[str, TrackConfig]:
    """Read ``tracks`` and the file-wide ``geometry`` from YAML (like ``config/terrain.yaml``)."""
    data = yaml.safe_load(Path(path).read_text())
    geometry = ObstacleGeometry(**data.get("geometry", {}))
    return {
        name: TrackConfig.from_dict(name, track, geometry) for name, track in data["tracks"].items()
    }


# ----------------------------------------------------------------------------- the results
@dataclass(frozen=True)
class TerrainGeom:
    """One static geom of the terrain, in the terrain's frame."""

    name: str
    kind: str
    """``floor``, ``bar``, ``pit_floor``, ``baffle``, ``ramp`` or ``catch_plane``."""
    type: str
    """``box`` or ``plane``."""
    pos: tuple[float, float, float]
    size: tuple[float, float, float]
    """Half sizes for boxes; MuJoCo plane size for planes (infinite for collision)."""
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Segment:
    """A stretch of the track along x and what it asks of the robot."""

    kind: str
    """``start``, ``flat`` (gap), ``finish``, ``bar``, ``pit``, ``baffle``, ``stairs_up``,
    ``stairs_down``, ``landing``, ``slope_up``, ``slope_down`` or ``plane``."""
    task: str
    """``bar``, ``pit``, ``baffle``, ``stair``, ``slope``, ``plane``; empty for connecting flats."""
    gait: str
    x_start: float
    x_end: float
    parameter: float | None
    """Bar height, pit width, baffle clearance, step height [m]; slope angle [deg]; flats: None."""
    unit: str
    z_start: float
    """Walking-surface height at ``x_start`` (the rim for a pit)."""
    z_end: float
    index: int = -1
    """Which obstacle of its section (0-based); -1 for connecting flats."""


@dataclass(frozen=True)
class TerrainDescription:
    """What the benchmark needs to know about a track (terrain frame)."""

    name: str
    length: float
    width: float
    segments: tuple[Segment, ...]
    profile: tuple[tuple[float, float, float, float], ...]
    """Walking surface as pieces ``(x0, x1, z0, z1)`` (linear in between); pits are gaps."""
    spawn: tuple[float, float, float]
    """Where to put the robot: x, y and the surface height there (add the standing height)."""
    target: tuple[float, float, float] | None
    success_radius: float
    catch_z: float
    """Height of the catch plane under the runway and its pits."""

    @property
    def half_width(self) -> float:
        return self.width / 2.0

    def segment_at(self, x: float) -> Segment | None:
        """The segment containing ``x`` (the later one on a boundary); None off the ends."""
        for seg in reversed(self.segments):
            if seg.x_start <= x <= seg.x_end:
                return seg
        return None

    def gait_at(self, x: float) -> str:
        """The gait the track asks for at ``x`` (the nearest end's gait off the ends)."""
        seg = self.segment_at(x)
        if seg is None:
            seg = self.segments[0] if x < self.segments[0].x_start else self.segments[-1]
        return seg.gait

    def surface_height(self, x: float) -> float | None:
        """Walking-surface height at ``x``; None over a pit or off the ends."""
        return _surface_height(self.profile, x)

    def is_off_runway(self, x: float, y: float) -> bool:
        """True when (x, y), e.g. the base position, is outside the runway's footprint.

        An unbounded terrain (``plane``) has no runway to leave.
        """
        if not math.isfinite(self.length):
            return False
        return abs(y) > self.half_width or not (0.0 <= x <= self.length)

    def reached_target(self, x: float, y: float) -> bool:
        """True within ``success_radius`` of the target (horizontal distance)."""
        if self.target is None:
            return False
        return math.hypot(x - self.target[0], y - self.target[1]) <= self.success_radius

    def sections(self, task: str, gait: str | None = None) -> tuple[Segment, ...]:
        """Segments of one task (and gait, if given), in order."""
        return tuple(
            s for s in self.segments if s.task == task and (gait is None or s.gait == gait)
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)


@dataclass(frozen=True)
class Terrain:
    """Geoms plus their description."""

    geoms: tuple[TerrainGeom, ...]
    description: TerrainDescription
    config: TrackConfig | None = None
    friction: float = 1.0


# ----------------------------------------------------------------------------- the layout
def _snap(z: float) -> float:
    """Round a height to 1 nm so sums of rises and drops return exactly to level (and no -0.0)."""
    return round(z, 9) + 0.0


def _surface_height(profile: Sequence[tuple[float, float, float, float]], x: float) -> float | None:
    for x0, x1, z0, z1 in profile:
        if x0 <= x <= x1:
            return z0 if z1 == z0 else z0 + (z1 - z0) * (x - x0) / (x1 - x0)
    return None


def _footprint(sec: SectionSpec, value: float, g: ObstacleGeometry) -> float:
    flight = g.stair_steps * g.stair_tread
    if sec.kind == "bar":
        return g.bar_depth
    if sec.kind == "pit":
        return value
    if sec.kind == "baffle":
        return g.baffle_thickness
    if sec.kind == "plane":
        return value
    if sec.kind == "stairs":
        return 2 * flight + g.stair_landing if sec.direction == "up_down" else flight
    # slope
    return 2 * g.slope_run + g.slope_landing if sec.direction == "up_down" else g.slope_run


class _Layout:
    def __init__(self, cfg: TrackConfig) -> None:
        self.cfg = cfg
        self.g = cfg.geometry
        self.x = 0.0
        self.z = 0.0
        self.segments: list[Segment] = []
        self.pieces: list[tuple[float, float, float, float]] = []
        self.geoms: list[TerrainGeom] = []
        self.counts: dict[str, int] = {}
        self.hw = cfg.width / 2.0

    def _name(self, kind: str) -> str:
        n = self.counts.get(kind, 0)
        self.counts[kind] = n + 1
        return f"{kind}_{n}"

    def _segment(
        self,
        kind: str,
        task: str,
        gait: str,
        x0: float,
        z0: float,
        parameter: float | None = None,
        unit: str = "",
        index: int = -1,
    ) -> None:
        self.segments.append(
            Segment(kind, task, gait, x0, self.x, parameter, unit, z0, self.z, index)
        )

    def _box(
        self,
        kind: str,
        x0: float,
        x1: float,
        z0: float,
        z1: float,
        quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0),
    ) -> None:
        self.geoms.append(
            TerrainGeom(
                name=self._name(kind),
                kind=kind,
                type="box",
                pos=((x0 + x1) / 2.0, 0.0, (z0 + z1) / 2.0),
                size=((x1 - x0) / 2.0, self.hw, (z1 - z0) / 2.0),
                quat=quat,
            )
        )

    def flat(self, length: float, gait: str, kind: str = "flat", task: str = "") -> None:
        if length <= 0:
            return
        x0 = self.x
        self.pieces.append((x0, x0 + length, self.z, self.z))
        self.x += length
        self._segment(kind, task, gait, x0, self.z)

    def obstacle(self, sec: SectionSpec, value: float, index: int) -> None:
        g, gait, task, unit = self.g, sec.gait, TASKS[sec.kind], UNITS[sec.kind]
        x0, z0 = self.x, self.z
        if sec.kind == "bar":
            self.pieces.append((x0, x0 + g.bar_depth, z0, z0))
            self._box("bar", x0, x0 + g.bar_depth, z0, z0 + value)
            self.x += g.bar_depth
            self._segment("bar", task, gait, x0, z0, value, unit, index)
        elif sec.kind == "pit":
            floor = z0 - g.pit_depth
            self._box("pit_floor", x0, x0 + value, floor - g.pit_floor_thickness, floor)
            self.x += value
            self._segment("pit", task, gait, x0, z0, value, unit, index)
        elif sec.kind == "baffle":
            self.pieces.append((x0, x0 + g.baffle_thickness, z0, z0))
            bottom = z0 + value
            self._box("baffle", x0, x0 + g.baffle_thickness, bottom, bottom + g.baffle_height)
            self.x += g.baffle_thickness
            self._segment("baffle", task, gait, x0, z0, value, unit, index)
        elif sec.kind == "plane":
            self.pieces.append((x0, x0 + value, z0, z0))
            self.x += value
            self._segment("plane", task, gait, x0, z0, value, unit, index)
        elif sec.kind == "stairs":
            if sec.direction in ("up_down", "up"):
                self._flight(value, +1, gait, index)
            if sec.direction == "up_down":
                self.flat(g.stair_landing, gait, "landing", task)
            if sec.direction in ("up_down", "down"):
                self._flight(value, -1, gait, index)
        else:  # slope
            if sec.direction in ("up_down", "up"):
                self._ramp(value, +1, gait, index)
            if sec.direction == "up_down":
                self.flat(g.slope_landing, gait, "landing", task)
            if sec.direction in ("up_down", "down"):
                self._ramp(value, -1, gait, index)

    def _flight(self, step: float, sign: int, gait: str, index: int) -> None:
        x0, z0 = self.x, self.z
        for _ in range(self.g.stair_steps):
            self.z = _snap(self.z + sign * step)
            self.pieces.append((self.x, self.x + self.g.stair_tread, self.z, self.z))
            self.x += self.g.stair_tread
        kind = "stairs_up" if sign > 0 else "stairs_down"
        self._segment(kind, "stair", gait, x0, z0, step, "m", index)

    def _ramp(self, angle_deg: float, sign: int, gait: str, index: int) -> None:
        x0, z0 = self.x, self.z
        run = self.g.slope_run
        x1, z1 = x0 + run, _snap(z0 + sign * run * math.tan(math.radians(angle_deg)))
        theta = math.atan2(z1 - z0, x1 - x0)
        half_t = self.g.ramp_thickness / 2.0
        # Box x along the slope; rotating about y by -theta lifts +x by theta.
        quat = (math.cos(-theta / 2.0), 0.0, math.sin(-theta / 2.0), 0.0)
        normal = (-math.sin(theta), math.cos(theta))
        cx = (x0 + x1) / 2.0 - half_t * normal[0]
        cz = (z0 + z1) / 2.0 - half_t * normal[1]
        self.geoms.append(
            TerrainGeom(
                name=self._name("ramp"),
                kind="ramp",
                type="box",
                pos=(cx, 0.0, cz),
                size=(math.hypot(x1 - x0, z1 - z0) / 2.0, self.hw, half_t),
                quat=quat,
            )
        )
        self.pieces.append((x0, x1, z0, z1))
        self.x, self.z = x1, z1
        kind = "slope_up" if sign > 0 else "slope_down"
        self._segment(kind, "slope", gait, x0, z0, angle_deg, "deg", index)

    def columns(self, catch_z: float) -> None:
        """Solid floor columns from the catch plane up to each flat piece (merged where level)."""
        merged: list[list[float]] = []
        for x0, x1, z0, z1 in self.pieces:
            if z0 != z1:
                continue
            if merged and abs(merged[-1][1] - x0) < 1e-9 and merged[-1][2] == z0:
                merged[-1][1] = x1
            else:
                merged.append([x0, x1, z0])
        for x0, x1, z in merged:
            self._box("floor", x0, x1, catch_z, z)


def build_track(cfg: TrackConfig) -> Terrain:
    """Lay out one track; raise ValueError if its obstacles do not fit its length."""
    g = cfg.geometry
    obstacles = [(sec, v, i) for sec in cfg.sections for i, v in enumerate(sec.values)]
    fixed = cfg.lead_in + cfg.finish + sum(_footprint(s, v, g) for s, v, _ in obstacles)
    gap = (cfg.length - fixed) / (len(obstacles) + 1)
    if gap < cfg.min_gap - 1e-9:
        need = fixed + (len(obstacles) + 1) * cfg.min_gap
        raise ValueError(
            f"track {cfg.name!r}: its obstacles need {need:.2f} m with {cfg.min_gap} m gaps, "
            f"but the track is {cfg.length} m long"
        )
    if not 0 < cfg.target_margin < cfg.finish:
        raise ValueError(f"track {cfg.name!r}: target_margin must lie inside the finish flat")

    lay = _Layout(cfg)
    gait = obstacles[0][0].gait if obstacles else QUADRUPEDAL
    lay.flat(cfg.lead_in, gait, "start")
    for sec, value, index in obstacles:
        lay.flat(gap, gait)  # a connecting flat keeps the previous obstacle's gait
        lay.obstacle(sec, value, index)
        gait = sec.gait
    lay.flat(gap, gait)
    lay.flat(cfg.finish, gait, "finish")
    if abs(lay.x - cfg.length) > 1e-6:  # float sums drift by ~1e-14, never more
        raise AssertionError(f"layout length {lay.x} != {cfg.length}")

    lowest = min(min(z0, z1) for _, _, z0, z1 in lay.pieces)
    pit_floors = [geo.pos[2] - geo.size[2] for geo in lay.geoms if geo.kind == "pit_floor"]
    catch_z = min([lowest - cfg.drop_depth, *(z - 0.05 for z in pit_floors)])
    lay.columns(catch_z)
    lay.geoms.append(
        TerrainGeom(
            name="catch_plane",
            kind="catch_plane",
            type="plane",
            pos=(cfg.length / 2.0, 0.0, catch_z),
            size=(cfg.length / 2.0 + 20.0, cfg.width / 2.0 + 20.0, 1.0),
        )
    )
    tx = cfg.length - cfg.target_margin
    tz = _surface_height(lay.pieces, tx)
    desc = TerrainDescription(
        name=cfg.name,
        length=cfg.length,
        width=cfg.width,
        segments=tuple(lay.segments),
        profile=tuple(lay.pieces),
        spawn=(cfg.lead_in / 2.0, 0.0, 0.0),
        target=(tx, 0.0, 0.0 if tz is None else tz),
        success_radius=cfg.success_radius,
        catch_z=catch_z,
    )
    return Terrain(geoms=tuple(lay.geoms), description=desc, config=cfg, friction=cfg.friction)


def plane_terrain(size: float = 50.0, friction: float = 1.0) -> Terrain:
    """An unbounded flat ground at z = 0 (sim-to-sim demo, plane tests): no edges, no target."""
    inf = math.inf
    desc = TerrainDescription(
        name="plane",
        length=inf,
        width=inf,
        segments=(Segment("plane", "plane", QUADRUPEDAL, -inf, inf, None, "", 0.0, 0.0),),
        profile=((-inf, inf, 0.0, 0.0),),
        spawn=(0.0, 0.0, 0.0),
        target=None,
        success_radius=1.0,
        catch_z=0.0,
    )
    geom = TerrainGeom("ground", "floor", "plane", (0.0, 0.0, 0.0), (size, size, 1.0))
    return Terrain(geoms=(geom,), description=desc, config=None, friction=friction)


TERRAIN_NAMES = ("plane", *default_track_configs())
"""Every named terrain :func:`build_terrain` knows."""


def build_terrain(
    terrain: str | TrackConfig, configs: Mapping[str, TrackConfig] | None = None
) -> Terrain:
    """A terrain by name (``plane``, ``mixed``, ``bar_q``, ...) or from a :class:`TrackConfig`.

    ``configs`` replaces the built-in track configurations (e.g. from :func:`load_track_configs`).
    """
    if isinstance(terrain, TrackConfig):
        return build_track(terrain)
    if terrain == "plane":
        return plane_terrain()
    known = dict(configs) if configs is not None else default_track_configs()
    if terrain not in known:
        raise ValueError(f"unknown terrain {terrain!r}; known: {['plane', *known]}")
    return build_track(known[terrain])


# ----------------------------------------------------------------------------- into a spec
_RGBA = {
    "floor": (0.55, 0.57, 0.60, 1.0),
    "bar": (0.90, 0.55, 0.15, 1.0),
    "pit_floor": (0.25, 0.22, 0.20, 1.0),
    "baffle": (0.80, 0.20, 0.20, 0.8),
    "ramp": (0.45, 0.60, 0.45, 1.0),
    "catch_plane": (0.15, 0.17, 0.20, 1.0),
}


def add_terrain(
    spec: mujoco.MjSpec,
    terrain: Terrain,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    prefix: str = "",
) -> list[mujoco.MjsGeom]:
    """Add the terrain's geoms to the world body of ``spec``, shifted by ``origin``.

    The description stays in the terrain's own frame: add ``origin`` to its coordinates.
    """
    out = []
    friction = [terrain.friction, 0.005, 0.0001]
    for geo in terrain.geoms:
        gtype = mujoco.mjtGeom.mjGEOM_PLANE if geo.type == "plane" else mujoco.mjtGeom.mjGEOM_BOX
        out.append(
            spec.worldbody.add_geom(
                name=f"{prefix}{geo.name}",
                type=gtype,
                pos=[p + o for p, o in zip(geo.pos, origin, strict=True)],
                size=list(geo.size),
                quat=list(geo.quat),
                rgba=list(_RGBA.get(geo.kind, _RGBA["floor"])),
                friction=friction,
                condim=3,
            )
        )
    return out
