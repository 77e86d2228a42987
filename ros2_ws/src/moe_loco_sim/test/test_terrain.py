"""Terrain builders against the paper's Table II, and the geoms against their description."""

import json
import math
from pathlib import Path

import mujoco
import numpy as np
import pytest

from moe_loco_controller.core import go2
from moe_loco_sim.scene import build_scene
from moe_loco_sim.terrain import (
    BIPEDAL,
    QUADRUPEDAL,
    TERRAIN_NAMES,
    SectionSpec,
    TrackConfig,
    add_terrain,
    build_terrain,
    build_track,
    default_track_configs,
    load_track_configs,
)

CONFIG = Path(__file__).resolve().parents[1] / "config"
SINGLE = (
    "bar_q",
    "pit_q",
    "baffle_q",
    "stair_q",
    "slope_q",
    "plane_q",
    "walk_b",
    "slope_b",
    "stair_b",
)


@pytest.fixture(scope="module")
def mixed():
    return build_terrain("mixed")


def params(desc, kind, gait=None):
    return [
        s.parameter for s in desc.segments if s.kind == kind and (gait is None or s.gait == gait)
    ]


# ------------------------------------------------------------------- Table II
def test_mixed_runway_matches_table_ii(mixed):
    d = mixed.description
    assert d.length == 100.0 and d.width == 5.0
    q, b = QUADRUPEDAL, BIPEDAL

    bars = params(d, "bar", q)
    assert len(bars) == 5 and min(bars) == pytest.approx(0.05) and max(bars) == pytest.approx(0.2)
    pits = params(d, "pit", q)
    assert len(pits) == 5 and min(pits) == pytest.approx(0.05) and max(pits) == pytest.approx(0.2)
    baffles = params(d, "baffle", q)
    assert len(baffles) == 5
    assert baffles[0] == pytest.approx(0.3) and baffles[-1] == pytest.approx(0.22)
    assert all(0.22 - 1e-9 <= c <= 0.3 + 1e-9 for c in baffles)

    for kind, gait in (("stairs_up", q), ("stairs_down", q), ("stairs_down", b)):
        steps = params(d, kind, gait)
        assert len(steps) == 3, (kind, gait)
        assert min(steps) == pytest.approx(0.05) and max(steps) == pytest.approx(0.15)
    assert params(d, "stairs_up", b) == []
    for kind in ("slope_up", "slope_down"):
        for gait in (q, b):
            angles = params(d, kind, gait)
            assert len(angles) == 3
            assert min(angles) == pytest.approx(10.0) and max(angles) == pytest.approx(35.0)

    planes = [s for s in d.segments if s.kind == "plane"]
    assert len(planes) == 1 and planes[0].gait == b
    assert planes[0].x_end - planes[0].x_start == pytest.approx(10.0)
    # quadrupedal obstacles first, bipedal sections after the plane
    assert all(s.gait == q for s in d.segments if s.task in ("bar", "pit", "baffle"))
    assert all(s.gait == b for s in d.segments if s.x_start >= planes[0].x_start)


def test_runway_footprint(mixed):
    d = mixed.description
    for g in mixed.geoms:
        if g.type == "box":
            assert g.size[1] == pytest.approx(2.5), g.name  # every box spans the full 5 m width
            corners_x = _box_x_extent(g)
            assert corners_x[0] >= -1e-9 and corners_x[1] <= d.length + 0.2, g.name
    # segments tile [0, length] without gaps or overlaps
    assert d.segments[0].x_start == 0.0
    for a, b in zip(d.segments, d.segments[1:], strict=False):
        assert b.x_start == pytest.approx(a.x_end, abs=1e-9)
        assert b.z_start == pytest.approx(a.z_end, abs=1e-9) or a.kind == "pit"
    assert d.segments[-1].x_end == pytest.approx(100.0)
    assert d.segments[-1].kind == "finish"


def _box_x_extent(g):
    theta = 2 * math.atan2(g.quat[2], g.quat[0])
    half = abs(g.size[0] * math.cos(theta)) + abs(g.size[2] * math.sin(theta))
    return g.pos[0] - half, g.pos[0] + half


def test_obstacles_evenly_spaced(mixed):
    d = mixed.description
    gaps = [s.x_end - s.x_start for s in d.segments if s.kind == "flat"]
    assert (
        len(gaps) == 28 + 1
    )  # 28 obstacles (5+5+5+3+3+1+3+3 sets), a gap before each and one after
    assert np.ptp(gaps) < 1e-9
    assert gaps[0] >= 0.8


@pytest.mark.parametrize("name", SINGLE)
def test_single_task_tracks(name):
    d = build_terrain(name).description
    assert d.length == 30.0 and d.width == 5.0
    gait = {"q": QUADRUPEDAL, "b": BIPEDAL}[name[-1]]
    task = {"walk": "plane"}.get(name[:-2], name[:-2])
    assert all(s.gait == gait for s in d.segments)
    assert d.sections(task), name
    assert d.target[0] == pytest.approx(28.5)
    assert d.gait_at(d.spawn[0]) == gait


def test_single_tracks_carry_the_table_ii_ranges():
    assert sorted(params(build_terrain("bar_q").description, "bar")) == pytest.approx(
        [0.05, 0.0875, 0.125, 0.1625, 0.2]
    )
    assert params(build_terrain("baffle_q").description, "baffle") == pytest.approx(
        [0.3, 0.28, 0.26, 0.24, 0.22]
    )
    stair_q = build_terrain("stair_q").description
    assert (
        params(stair_q, "stairs_up")
        == params(stair_q, "stairs_down")
        == pytest.approx([0.05, 0.1, 0.15])
    )
    assert params(build_terrain("slope_b").description, "slope_up") == pytest.approx([10, 22.5, 35])
    assert params(build_terrain("stair_b").description, "stairs_up") == []


# ------------------------------------------------------------------- geoms vs description
def _terrain_model(terrain):
    spec = mujoco.MjSpec()
    add_terrain(spec, terrain)
    m = spec.compile()
    return m, mujoco.MjData(m)


def _ray(m, d, x, z_from, direction):
    geomid = np.array([-1], dtype=np.int32)
    dist = mujoco.mj_ray(
        m, d, np.array([x, 0.3, z_from]), np.array([0, 0, direction], float), None, 1, -1, geomid
    )
    assert geomid[0] >= 0, (x, z_from)
    return z_from + direction * dist


@pytest.mark.parametrize("name", ["mixed", "stair_b"])
def test_geoms_match_the_description(name):
    """Ray casts down (and up under baffles) find exactly the surface the description states."""
    terrain = build_terrain(name)
    d = terrain.description
    g = terrain.config.geometry
    m, data = _terrain_model(terrain)
    mujoco.mj_forward(m, data)
    top = 5.0
    for s in d.segments:
        xs = s.x_start + (s.x_end - s.x_start) * np.array([0.13, 0.37, 0.61, 0.89])
        for x in xs:
            hit = _ray(m, data, x, top, -1)
            if s.kind == "bar":
                assert hit == pytest.approx(s.z_start + s.parameter, abs=1e-9)
            elif s.kind == "pit":
                assert d.surface_height(x) is None
                assert hit == pytest.approx(s.z_start - g.pit_depth, abs=1e-9)
            elif s.kind == "baffle":
                assert hit == pytest.approx(s.z_start + s.parameter + g.baffle_height, abs=1e-9)
                below = _ray(m, data, x, s.z_start + 0.01, +1)
                assert below - s.z_start == pytest.approx(s.parameter, abs=1e-9)
            else:
                assert hit == pytest.approx(d.surface_height(x), abs=1e-9), (s, x)
        if s.kind.startswith("slope"):
            x0, x1 = s.x_start + 0.1, s.x_end - 0.1
            dz = _ray(m, data, x1, top, -1) - _ray(m, data, x0, top, -1)
            angle = math.degrees(math.atan2(abs(dz), x1 - x0))
            assert angle == pytest.approx(s.parameter, abs=1e-6)
            assert (dz > 0) == (s.kind == "slope_up")
        if s.kind.startswith("stairs"):
            n, tread = g.stair_steps, g.stair_tread
            treads = [_ray(m, data, s.x_start + (k + 0.5) * tread, top, -1) for k in range(n)]
            rises = np.diff([s.z_start, *treads])
            sign = 1 if s.kind == "stairs_up" else -1
            np.testing.assert_allclose(rises, sign * s.parameter, atol=1e-9)
    # the catch plane lies below every walking surface and pit floor, beside the runway too
    assert _ray(m, data, 50.0 if d.length > 50 else 15.0, top, -1) > d.catch_z
    geomid = np.array([-1], dtype=np.int32)
    dist = mujoco.mj_ray(
        m, data, np.array([5.0, 4.0, top]), np.array([0, 0, -1.0]), None, 1, -1, geomid
    )
    assert m.geom(geomid[0]).name == "catch_plane"
    assert top - dist == pytest.approx(d.catch_z)
    lowest = min(min(p[2], p[3]) for p in d.profile)
    assert d.catch_z <= lowest - 0.5 + 1e-9


def test_spawn_target_and_runway_queries(mixed):
    d = mixed.description
    assert d.spawn == (1.0, 0.0, 0.0)
    x, y, z = d.target
    assert (x, y) == (98.5, 0.0)
    assert z == pytest.approx(d.surface_height(x))
    assert d.reached_target(98.0, 0.5) and not d.reached_target(97.0, 0.0)
    assert not d.is_off_runway(50.0, 2.4)
    assert d.is_off_runway(50.0, 2.6) and d.is_off_runway(-0.1, 0) and d.is_off_runway(100.1, 0)
    assert d.gait_at(1.0) == QUADRUPEDAL and d.gait_at(99.0) == BIPEDAL
    bar = d.sections("bar")[0]
    assert d.segment_at((bar.x_start + bar.x_end) / 2) == bar
    json.dumps(d.to_dict())  # plain data for the benchmark's JSON
    plane = build_terrain("plane").description
    assert not plane.is_off_runway(1e4, -1e4) and plane.target is None
    assert plane.surface_height(123.0) == 0.0


def test_bipedal_down_stairs_end_sunken(mixed):
    d = mixed.description
    assert d.surface_height(99.0) == pytest.approx(-(0.05 + 0.10 + 0.15) * 4)


# ------------------------------------------------------------------- configuration
def test_yaml_matches_default_configs():
    assert load_track_configs(CONFIG / "terrain.yaml") == default_track_configs()
    assert set(TERRAIN_NAMES) == {"plane", "mixed", *SINGLE}


def test_bad_configs_are_refused():
    too_many = TrackConfig("t", 10.0, (SectionSpec("bar", QUADRUPEDAL, (0.1,) * 20),))
    with pytest.raises(ValueError, match=r"need .* m with 0.8 m gaps"):
        build_track(too_many)
    with pytest.raises(ValueError, match="kind 'wall'"):
        SectionSpec("wall", QUADRUPEDAL, (0.1,))
    with pytest.raises(ValueError, match="gait"):
        SectionSpec("bar", "tripedal", (0.1,))
    with pytest.raises(ValueError, match="positive"):
        SectionSpec("pit", QUADRUPEDAL, (-0.1,))
    with pytest.raises(ValueError, match="unknown terrain 'moon'"):
        build_terrain("moon")


def test_terrain_placed_with_origin_and_prefix():
    terrain = build_terrain("bar_q")
    spec = mujoco.MjSpec()
    add_terrain(spec, terrain, origin=(0.0, 10.0, 0.0), prefix="tile3_")
    add_terrain(spec, terrain, origin=(0.0, -10.0, 0.0), prefix="tile4_")
    m = spec.compile()
    assert m.geom("tile3_bar_0").pos[1] == pytest.approx(10.0)
    assert m.geom("tile4_bar_0").pos[1] == pytest.approx(-10.0)


# ------------------------------------------------------------------- the robot on a track
@pytest.mark.parametrize("contact", ["cheap", "menagerie"])
def test_robot_stands_at_the_track_spawn(contact):
    """The box floor holds the robot like the plane does (and the spawn height is right)."""
    scene = build_scene("pit_q", contact)
    m, idx = scene.model, scene.idx
    data = scene.make_data()
    for _ in range(200):
        q, dq = idx.joint_pos(data), idx.joint_vel(data)
        tau = np.clip(
            40 * (go2.DEFAULT_STANDING_POSE - q) - 0.5 * dq, -idx.torque_limit, idx.torque_limit
        )
        idx.set_torque(data, tau)
        mujoco.mj_step(m, data)
    assert 0.25 < idx.base_pos(data)[2] < 0.35
    assert np.all(idx.foot_forces(data) > 0)
