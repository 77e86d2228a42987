"""Training tiles against Table II, measured in the compiled MuJoCo model (geoms and rays)."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from moe_loco_training.env.config import EnvConfig
from moe_loco_training.env.tiles import build_env_model

TABLE_II_HARDEST = {  # Table II's hardest value per task, the top curriculum level
    "bar_q": 0.20,
    "pit_q": 0.20,
    "baffle_q": 0.22,
    "stair_q": 0.15,
    "slope_q": 35.0,
    "slope_b": 35.0,
    "stair_b": 0.15,
}


@pytest.fixture(scope="module")
def built():
    _, model, grid = build_env_model(EnvConfig())
    return model, grid


def geoms(model, tile, kind):
    prefix = f"t{tile.task_index}_{tile.level}_{kind}_"
    out = []
    for g in range(model.ngeom):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or ""
        if name.startswith(prefix):
            out.append(g)
    return out


def tiles_of(grid, task):
    return [t for t in grid.tiles if t.task == task]


def test_levels_are_graded_up_to_table_ii(built):
    _, grid = built
    assert grid.levels == 10 and len(grid.tiles) == 10 * len(grid.task_names)
    for task, hardest in TABLE_II_HARDEST.items():
        values = [t.value for t in tiles_of(grid, task)]
        assert values[-1] == pytest.approx(hardest), task
        harder = np.diff(values) < 0 if task == "baffle_q" else np.diff(values) > 0
        assert np.all(harder), (task, values)  # baffles: harder = lower clearance
    for task in ("plane_q", "standup_b", "walk_b"):
        assert all(t.value is None for t in tiles_of(grid, task))


def test_bars_baffles_pits_in_the_model(built):
    model, grid = built
    for tile in tiles_of(grid, "bar_q"):
        bars = geoms(model, tile, "bar")
        assert len(bars) == 3
        for g in bars:
            top = model.geom_pos[g, 2] + model.geom_size[g, 2]
            assert top == pytest.approx(tile.value)  # on the z = 0 floor
            assert 2 * model.geom_size[g, 1] == pytest.approx(4.0)  # full tile width
    for tile in tiles_of(grid, "baffle_q"):
        beams = geoms(model, tile, "baffle")
        assert len(beams) == 3
        for g in beams:
            bottom = model.geom_pos[g, 2] - model.geom_size[g, 2]
            assert bottom == pytest.approx(tile.value)  # clearance above the floor
    for tile in tiles_of(grid, "pit_q"):
        floors = geoms(model, tile, "pit_floor")
        assert len(floors) == 3
        for g in floors:
            assert 2 * model.geom_size[g, 0] == pytest.approx(tile.value)  # pit width
        pits = [s for s in tile.description.segments if s.kind == "pit"]
        assert [s.x_end - s.x_start for s in pits] == pytest.approx([tile.value] * 3)


def test_stairs_and_slopes_in_the_model(built):
    model, grid = built
    for task, direction in (("stair_q", "up_down"), ("stair_b", "down")):
        for tile in tiles_of(grid, task):
            d = tile.description
            flights = [s for s in d.segments if s.kind.startswith("stairs")]
            kinds = [s.kind for s in flights]
            assert kinds == (
                ["stairs_up", "stairs_down"] if direction == "up_down" else ["stairs_down"]
            )
            for s in flights:
                rise = abs(s.z_end - s.z_start)
                assert rise == pytest.approx(4 * tile.value)  # 4 risers of the step height
    for task in ("slope_q", "slope_b"):
        for tile in tiles_of(grid, task):
            ramps = geoms(model, tile, "ramp")
            assert len(ramps) == 2
            for g in ramps:
                w, _, y, _ = model.geom_quat[g]
                angle = abs(math.degrees(2 * math.atan2(y, w)))
                assert angle == pytest.approx(tile.value, abs=1e-6)


def test_height_profiles_match_ray_casts(built):
    """The heights the rewards use are where a ray from above hits the tile's surface (ramps,
    stair treads, floors; bars and baffles are obstacles, pits gaps, and are left out)."""
    model, grid = built
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    geomid = np.zeros(1, dtype=np.int32)
    checked = 0
    for tile in grid.tiles:
        if tile.task == "baffle_q" or tile.level % 3:  # baffles float above the surface
            continue
        ti = grid.tiles.index(tile)
        ox, oy = tile.origin
        for x in np.linspace(0.2, 7.8, 39) + 0.013:  # off the boxes' shared faces
            near = [tile.description.segment_at(x + dx) for dx in (-0.02, 0.0, 0.02)]
            if any(seg is not None and seg.kind in ("pit", "bar") for seg in near):
                continue  # a pit is a gap; a bar is an obstacle, not walking surface
            dist = mujoco.mj_ray(
                model,
                data,
                np.array([ox + x, oy + 0.5, 3.0]),
                np.array([0.0, 0.0, -1.0]),
                None,
                1,
                -1,
                geomid,
            )
            assert model.geom_bodyid[geomid[0]] == 0  # terrain, not the robot
            hit = 3.0 - dist
            # at a stair riser either side's height is right: look 2 cm either way
            h = grid.height(np.full(3, ti), np.array([x - 0.02, x, x + 0.02]))
            assert h.min() - 0.005 <= hit <= h.max() + 0.005, (tile.task, tile.level, x)
            checked += 1
    assert checked > 500
    assert grid.ground_z < min(np.min(grid.heights), -0.5)
