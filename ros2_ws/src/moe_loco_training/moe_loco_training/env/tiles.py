"""Training terrain: a grid of tiles, one row per task, one tile per curriculum level.

Each tile is a short track laid out by the simulator's own builder
(:func:`moe_loco_sim.terrain.build_track`): a flat lead-in where the robot spawns, the task's
obstacles at the level's value (``TaskSpec.value``: easiest at level 0, Table II's hardest at the
top), a flat finish. Tile (task t, level l) sits at x = l * tile_length, y = t * tile_width; all
tiles share one MuJoCo model, and every robot is its own ``MjData`` of a copy of that model, so
robots never meet. The tiles' own catch planes are dropped (an infinite plane of a shallow tile
would cut through a deep one) and one ground plane lies under the deepest tile.

When every tile is a plane, the world is that one ground plane at the tiles' surface (z = 0) and
nothing else: a robot may walk anywhere. (Each plane tile is otherwise an 8 x 4 m floor slab with
a 0.6 m drop at its edges, and plane tiles spawn robots 0.75 m from the slab's end facing any
way: with the tile-edge time-out off, robots walked off the slab and fell, which is what the CPU
walking campaign's policy did for its first 20 M samples.)

The model is :func:`moe_loco_sim.scene.build_scene_spec`'s Go2 (PD-servo actuation, the
deployment PD law in the engine at every substep) plus contact sensors (net force, world frame)
on the 13 links of ``constants.LINK_BODIES`` and on the four foot spheres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from moe_loco_sim.scene import build_scene_spec
from moe_loco_sim.terrain import (
    SectionSpec,
    Segment,
    Terrain,
    TerrainDescription,
    TerrainGeom,
    TrackConfig,
    build_track,
)
from moe_loco_training.env.config import EnvConfig, EnvConfigError, TaskSpec, TerrainConfig
from moe_loco_training.env.constants import ADAPTATION_TASKS, LINK_BODIES, TASKS

TILE_FINISH = 1.0
TILE_TARGET_MARGIN = 0.5
TILE_MIN_GAP = 0.3
GROUND_BELOW = 0.1
"""The ground plane lies this far below the deepest tile's catch depth [m]."""

_FORCE = 1 << int(mujoco.mjtConDataField.mjCONDATA_FORCE)
_NETFORCE = 3  # mjtConDataReduce: none, mindist, maxforce, netforce


@dataclass(frozen=True)
class Tile:
    """One tile of the grid (coordinates of its own track: x along it from 0, y across)."""

    task: str
    task_index: int
    level: int
    value: float | None
    """The obstacle value (Table II units), None for plane tiles."""
    origin: tuple[float, float]
    """World position of the tile's track origin (x = 0, y = 0 centre line)."""
    description: TerrainDescription
    course_length: float
    """From the spawn point to the end of the last obstacle [m] (plane tiles: to the finish)."""


def tile_track_config(task: str, spec: TaskSpec, level: int, terrain: TerrainConfig) -> TrackConfig:
    """The :class:`TrackConfig` of one tile."""
    length = terrain.tile_length
    if spec.kind == "plane":
        values: tuple[float, ...] = (length - terrain.lead_in - TILE_FINISH - 2 * TILE_MIN_GAP,)
    else:
        values = (round(spec.value(level, terrain.levels), 9),) * spec.count
    return TrackConfig(
        name=f"{task}_{level}",
        length=length,
        width=terrain.tile_width,
        lead_in=terrain.lead_in,
        finish=TILE_FINISH,
        target_margin=TILE_TARGET_MARGIN,
        min_gap=TILE_MIN_GAP,
        friction=terrain.friction,
        sections=(SectionSpec(spec.kind, spec.gait, values, spec.direction),),
    )


@dataclass
class TileGrid:
    """Every tile, their height profiles and spawn points, indexed ``task_index * levels + l``."""

    tiles: list[Tile]
    levels: int
    task_names: tuple[str, ...]
    resolution: float
    heights: np.ndarray
    """(n_tiles, n_samples) walking-surface height along each tile's x: floors, treads and
    ramps; bars and baffles are obstacles on the floor, not surface; over a pit, the rim."""
    origins: np.ndarray
    """(n_tiles, 2) world x, y of each tile's origin."""
    spawns: np.ndarray
    """(n_tiles, 3) spawn point in tile coordinates (x, y, surface z)."""
    course: np.ndarray
    """(n_tiles,) course length of each tile [m]."""
    ground_z: float

    def tile_index(self, task_index: np.ndarray, level: np.ndarray) -> np.ndarray:
        return task_index * self.levels + level

    def height(self, tile: np.ndarray, x_rel: np.ndarray) -> np.ndarray:
        """Surface height [m] at tile-relative x for each robot (clamped to the tile)."""
        n = self.heights.shape[1]
        i = np.clip(np.round(x_rel / self.resolution).astype(np.int64), 0, n - 1)
        return self.heights[tile, i]


def _course_length(desc: TerrainDescription) -> float:
    obstacles = [s for s in desc.segments if s.index >= 0]
    end = obstacles[-1].x_end if obstacles else desc.length
    return max(end - desc.spawn[0], 0.1)


def _profile_heights(desc: TerrainDescription, xs: np.ndarray) -> np.ndarray:
    px, pz = [], []
    for x0, x1, z0, z1 in desc.profile:
        px += [x0, x1]
        pz += [z0, z1]
    return np.interp(xs, np.array(px), np.array(pz))  # pits: rim to rim (same level)


def build_tile_grid(terrain: TerrainConfig) -> TileGrid:
    """Lay out every tile of every task in ``terrain.tasks`` (in :data:`TASKS` order, then the
    adaptation tasks)."""
    names = tuple(t for t in (*TASKS, *ADAPTATION_TASKS) if t in terrain.tasks)
    tiles: list[Tile] = []
    xs = np.arange(0.0, terrain.tile_length + 1e-9, terrain.height_resolution)
    heights, origins, spawns, course = [], [], [], []
    catch = []
    for ti, task in enumerate(names):
        spec = terrain.tasks[task]
        for level in range(terrain.levels):
            try:
                track = build_track(tile_track_config(task, spec, level, terrain))
            except ValueError as e:
                raise EnvConfigError(f"terrain.tasks.{task}: level {level}: {e}") from None
            d = track.description
            origin = (level * terrain.tile_length, ti * terrain.tile_width)
            value = None if spec.kind == "plane" else spec.value(level, terrain.levels)
            tiles.append(Tile(task, ti, level, value, origin, d, _course_length(d)))
            heights.append(_profile_heights(d, xs))
            origins.append(origin)
            spawns.append(d.spawn)
            course.append(tiles[-1].course_length)
            catch.append(d.catch_z)
    return TileGrid(
        tiles=tiles,
        levels=terrain.levels,
        task_names=names,
        resolution=terrain.height_resolution,
        heights=np.array(heights),
        origins=np.array(origins, dtype=np.float64),
        spawns=np.array(spawns, dtype=np.float64),
        course=np.array(course),
        ground_z=0.0 if all_plane(terrain) else min(catch) - GROUND_BELOW,
    )


def all_plane(terrain: TerrainConfig) -> bool:
    """Every task a plane: the world is one ground plane at z = 0 (see the module doc)."""
    return all(spec.kind == "plane" for spec in terrain.tasks.values())


def grid_terrain(grid: TileGrid, terrain: TerrainConfig) -> Terrain:
    """All tiles' geoms (catch planes dropped) shifted to their origins, plus one ground plane
    (alone, at the surface, when every tile is a plane)."""
    geoms: list[TerrainGeom] = []
    for tile in [] if all_plane(terrain) else grid.tiles:
        ox, oy = tile.origin
        track = build_track(
            tile_track_config(tile.task, terrain.tasks[tile.task], tile.level, terrain)
        )
        for g in track.geoms:
            if g.kind == "catch_plane":
                continue
            pos = (g.pos[0] + ox, g.pos[1] + oy, g.pos[2])
            geoms.append(
                TerrainGeom(
                    f"t{tile.task_index}_{tile.level}_{g.name}", g.kind, g.type, pos, g.size, g.quat
                )
            )
    span = max(grid.levels * terrain.tile_length, len(grid.task_names) * terrain.tile_width)
    geoms.append(
        TerrainGeom(
            "ground",
            "catch_plane",
            "plane",
            (0.0, 0.0, grid.ground_z),
            (span + 50.0, span + 50.0, 1.0),
        )
    )
    first = grid.tiles[0]
    sx, sy, sz = first.description.spawn
    inf = math.inf
    desc = TerrainDescription(
        name="training_grid",
        length=inf,
        width=inf,
        segments=(Segment("plane", "plane", "quadrupedal", -inf, inf, None, "", 0.0, 0.0),),
        profile=((-inf, inf, 0.0, 0.0),),
        spawn=(sx + first.origin[0], sy + first.origin[1], sz),
        target=None,
        success_radius=1.0,
        catch_z=grid.ground_z,
    )
    return Terrain(geoms=tuple(geoms), description=desc, config=None, friction=terrain.friction)


def add_contact_sensors(spec: mujoco.MjSpec, prefix: str = "") -> None:
    """Net contact force sensors (world frame) on every link body and every foot geom.

    Names: ``contact_<body>`` for the bodies of :data:`LINK_BODIES`, ``contact_<leg>_foot`` for
    the foot spheres. MuJoCo reports the force the named object exerts on the other side; the
    environment negates it (force *on* the link).
    """
    body, geom = mujoco.mjtObj.mjOBJ_BODY, mujoco.mjtObj.mjOBJ_GEOM
    items = [(f"{prefix}{b}", body) for b in LINK_BODIES]
    items += [(f"{prefix}{leg}_foot", geom) for leg in ("FR", "FL", "RR", "RL")]
    for name, objtype in items:
        spec.add_sensor(
            name=f"contact_{name}",
            type=mujoco.mjtSensor.mjSENS_CONTACT,
            objtype=objtype,
            objname=name,
            intprm=[_FORCE, _NETFORCE, 1],
        )


def contact_sensor_addresses(model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
    """``sensordata`` addresses: (13, 3) of the links, (4, 3) of the feet (SDK leg order)."""

    def adr(name: str) -> np.ndarray:
        s = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, name)
        if s < 0:
            raise KeyError(f"sensor {name} not in the model (add_contact_sensors)")
        a = int(model.sensor_adr[s])
        return np.arange(a, a + 3)

    links = np.stack([adr(f"contact_{b}") for b in LINK_BODIES])
    feet = np.stack([adr(f"contact_{leg}_foot") for leg in ("FR", "FL", "RR", "RL")])
    return links, feet


def build_env_model(config: EnvConfig) -> tuple[mujoco.MjSpec, mujoco.MjModel, TileGrid]:
    """The training model (every tile, one PD-actuated Go2, contact sensors) and its grid."""
    grid = build_tile_grid(config.terrain)
    terrain = grid_terrain(grid, config.terrain)
    spec, _ = build_scene_spec(terrain, config.contact, config.timestep, actuation="pd")
    add_contact_sensors(spec)
    return spec, spec.compile(), grid
