"""adapinn.geometry: exact primitives, set algebra by rejection, boundaries, normals, time."""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import chisquare

from adapinn.geometry import (
    AbstractDomain,
    Ball,
    Box,
    CSGUnion,
    Difference,
    Disk,
    Intersection,
    Interval,
    Polygon,
    SpaceTime,
    Sphere,
    Union,
    normal_derivative,
)
from adapinn.geometry.rejection import select_first

N = 20_000
P_MIN = 1e-3


def draw(domain: AbstractDomain, n: int = N, seed: int = 0) -> np.ndarray:
    """n points, drawn inside jax.jit (static shapes)."""
    x = jax.jit(lambda k: domain.sample(k, n))(jax.random.PRNGKey(seed))
    assert x.shape == (n, domain.dim)
    return np.asarray(x)


def inside(domain: AbstractDomain, x, atol: float = 1e-6) -> np.ndarray:
    """domain.contains, jitted (one compilation instead of op-by-op dispatch)."""
    return np.asarray(jax.jit(lambda y: domain.contains(y, atol))(jnp.asarray(x)))


def normals(domain: AbstractDomain, x) -> np.ndarray:
    """domain.normal, jitted."""
    return np.asarray(jax.jit(domain.normal)(jnp.asarray(x)))


def chi2_inside_cells(domain: AbstractDomain, x: np.ndarray, bins: int) -> float:
    """p-value of equal counts over the bounding-box cells that lie fully inside the domain
    (a 5^d grid of probe points per cell, corners included, all inside)."""
    box = domain.bounding_box
    low, high = np.asarray(box.low), np.asarray(box.high)
    d = len(low)
    width = (high - low) / bins
    offsets = np.array(list(itertools.product(np.linspace(0, 1, 5), repeat=d)))
    cells = np.array(list(itertools.product(range(bins), repeat=d)))
    probes = low + (cells[:, None, :] + offsets[None]) * width  # (cells, 5^d, d)
    inside_ = inside(domain, probes.reshape(-1, d), 0.0)
    full = inside_.reshape(len(cells), -1).all(axis=1)
    assert full.sum() >= 8, "too few cells inside to test"
    index = np.clip(np.floor((x - low) / width).astype(int), 0, bins - 1)
    flat = np.ravel_multi_index(index.T, (bins,) * d)
    counts = np.bincount(flat, minlength=bins**d)[np.ravel_multi_index(cells[full].T, (bins,) * d)]
    return chisquare(counts).pvalue


@functools.cache
def plate_with_holes() -> Difference:
    square = Box((0.0, 0.0), (1.0, 1.0))
    holes = [Disk((cx, cy), 0.1) for cx in (0.3, 0.7) for cy in (0.3, 0.7)]
    return square - holes[0] - holes[1] - holes[2] - holes[3]


L_SHAPE = [(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)]


def in_l_shape(x: np.ndarray) -> np.ndarray:
    t = 1e-6
    in_big = (x[:, 0] >= -t) & (x[:, 0] <= 2 + t) & (x[:, 1] >= -t) & (x[:, 1] <= 2 + t)
    return in_big & ~((x[:, 0] > 1 + t) & (x[:, 1] > 1 + t))


# ---------------------------------------------------------------- Box and Union unchanged


def old_box_from_unit(low, high, u):
    low_a, high_a = jnp.asarray(low), jnp.asarray(high)
    free = tuple(i for i, (lo, h) in enumerate(zip(low, high)) if h > lo)
    full = jnp.zeros((u.shape[0], len(low)), u.dtype)
    if free:
        full = full.at[:, jnp.asarray(free)].set(u)
    return low_a + full * (high_a - low_a)


def test_problems_domains_reexports_the_geometry_classes():
    from adapinn.problems import domains

    assert domains.Box is Box and domains.Union is Union
    assert domains.AbstractDomain is AbstractDomain


def test_box_and_union_are_bit_identical_to_the_old_formulas():
    key = jax.random.PRNGKey(3)
    box = Box((0.0, -1.0), (1.0, 1.0))
    u = jax.random.uniform(key, (257, 2))
    np.testing.assert_array_equal(box.from_unit(u), old_box_from_unit(box.low, box.high, u))
    np.testing.assert_array_equal(box.sample(key, 257), old_box_from_unit(box.low, box.high, u))
    walls = Union(Box((0.0, -1.0), (1.0, -1.0)), Box((0.0, 1.0), (1.0, 1.0)))
    u = jax.random.uniform(key, (300, 2))
    which = jnp.clip(jnp.searchsorted(jnp.asarray([0.5, 1.0]), u[:, 0], side="right"), 0, 1)
    left = old_box_from_unit((0.0, -1.0), (1.0, -1.0), u[:, 1:])
    right = old_box_from_unit((0.0, 1.0), (1.0, 1.0), u[:, 1:])
    expected = jnp.where((which == 0)[:, None], left, right)
    np.testing.assert_array_equal(walls.from_unit(u), expected)
    np.testing.assert_array_equal(walls.sample(key, 300), expected)
    assert walls.n_free == 2 and box.n_free == 2 and walls.measure == 2.0


# ---------------------------------------------------------------- primitives


def test_interval_is_a_uniform_1d_box():
    interval = Interval(-1.0, 3.0)
    assert isinstance(interval, Box) and interval.measure == 4.0 and interval.dim == 1
    x = draw(interval)
    assert chi2_inside_cells(interval, x, 20) > P_MIN
    assert inside(interval, x).all()
    assert not inside(interval, [[-1.1], [3.1]]).any()


def test_disk_is_uniform_and_exact():
    disk = Disk((0.5, -0.2), 0.7)
    assert disk.n_free == 2 and disk.measure == pytest.approx(math.pi * 0.49)
    x = draw(disk)
    assert inside(disk, x).all()
    assert chi2_inside_cells(disk, x, 12) > P_MIN
    assert not inside(disk, [[1.3, -0.2], [0.5, 0.6]]).any()


def test_ball_3d_is_uniform():
    ball = Ball((0.0, 1.0, 0.0), 2.0)
    assert ball.n_free == 4 and ball.measure == pytest.approx(4 / 3 * math.pi * 8)
    x = draw(ball)
    assert inside(ball, x).all()
    assert chi2_inside_cells(ball, x, 6) > P_MIN
    r = np.linalg.norm(x - np.array([0.0, 1.0, 0.0]), axis=1) / 2.0
    assert chisquare(np.histogram(r**3, bins=10, range=(0, 1))[0]).pvalue > P_MIN


def test_l_shaped_polygon_samples_inside_only_and_uniformly():
    shape = Polygon(L_SHAPE)
    assert shape.measure == pytest.approx(3.0)
    tri = np.asarray(shape.triangles)
    e, f = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    assert np.sum(0.5 * np.abs(e[:, 0] * f[:, 1] - e[:, 1] * f[:, 0])) == pytest.approx(3.0)
    x = draw(shape)
    assert in_l_shape(x).all()
    assert inside(shape, x).all()
    assert chi2_inside_cells(shape, x, 10) > P_MIN
    assert not inside(shape, [[1.5, 1.5], [2.5, 0.5]]).any()


def test_nonconvex_star_polygon_clockwise():
    angles = np.linspace(0, 2 * np.pi, 10, endpoint=False)[::-1]  # clockwise
    radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.4)
    star = Polygon(np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1))
    x = draw(star)
    assert inside(star, x).all()
    assert chi2_inside_cells(star, x, 10) > P_MIN
    assert star.measure == pytest.approx(5 * 1.0 * 0.4 * np.sin(np.pi / 5))


# ---------------------------------------------------------------- set algebra


def test_plate_with_four_holes():
    plate = plate_with_holes()
    assert isinstance(plate, Difference) and len(plate.removed) == 4  # flattened
    assert plate.measure == pytest.approx(1 - 4 * math.pi * 0.01, rel=0.02)
    x = draw(plate)
    centres = np.array([(0.3, 0.3), (0.3, 0.7), (0.7, 0.3), (0.7, 0.7)])
    gaps = np.linalg.norm(x[:, None] - centres[None], axis=-1)
    assert (gaps >= 0.1 - 1e-6).all() and ((x >= 0) & (x <= 1)).all()
    assert inside(plate, x).all()
    assert not inside(plate, centres).any()
    assert chi2_inside_cells(plate, x, 20) > P_MIN


def test_union_of_overlapping_disks_does_not_overweight_the_overlap():
    both = Disk((0.0, 0.0), 1.0) | Disk((1.0, 0.0), 1.0)
    assert isinstance(both, CSGUnion)
    lens = 2 * math.acos(0.5) - 0.5 * math.sqrt(3)
    assert both.measure == pytest.approx(2 * math.pi - lens, rel=0.02)
    x = draw(both)
    assert inside(both, x).all()
    assert chi2_inside_cells(both, x, 12) > P_MIN
    in_overlap = (np.linalg.norm(x, axis=1) < 1) & (np.linalg.norm(x - [1, 0], axis=1) < 1)
    expected = lens / (2 * math.pi - lens)
    assert abs(in_overlap.mean() - expected) < 4 * math.sqrt(expected / N)


def test_intersection_and_nested_operations():
    cap = Disk((0.0, 0.0), 1.0) & Box((-2.0, 0.0), (2.0, 2.0))
    assert isinstance(cap, Intersection)
    assert cap.measure == pytest.approx(math.pi / 2, rel=0.02)
    x = draw(cap)
    assert (x[:, 1] >= 0).all() and (np.linalg.norm(x, axis=1) <= 1 + 1e-6).all()
    assert chi2_inside_cells(cap, x, 12) > P_MIN
    ring = (Disk((0.0, 0.0), 1.0) | Box((0.0, -0.5), (2.0, 0.5))) - Disk((0.0, 0.0), 0.5)
    y = draw(ring)
    assert inside(ring, y).all()
    assert (np.linalg.norm(y, axis=1) >= 0.5 - 1e-6).all()
    assert chi2_inside_cells(ring, y, 12) > P_MIN
    # the annulus plus the part of the bar [0, 2] x [-1/2, 1/2] outside the unit disk; the
    # bar's part inside the disk is 2 * integral_0^(1/2) sqrt(1 - y^2) dy
    bar_inside = 2 * (math.asin(0.5) / 2 + 0.5 * 0.5 * math.sqrt(0.75))
    area = math.pi * 0.75 + 2.0 - bar_inside
    assert ring.measure == pytest.approx(area, rel=0.02)


def test_rejection_fills_short_draws_by_repeating_accepted_points():
    points = jnp.arange(10.0)[:, None]
    mask = jnp.asarray([False, True, False, False, True] + [False] * 5)
    np.testing.assert_array_equal(select_first(points, mask, 5)[:, 0], [1, 4, 1, 4, 1])
    mask = jnp.ones(10, bool).at[0].set(False)
    np.testing.assert_array_equal(select_first(points, mask, 3)[:, 0], [1, 2, 3])
    assert draw(plate_with_holes(), 3).shape == (3, 2)


# ---------------------------------------------------------------- boundaries and normals


def test_circle_boundary_is_uniform_in_angle_with_analytic_normals():
    disk = Disk((1.0, 2.0), 0.5)
    circle = disk.boundary
    assert isinstance(circle, Sphere) and circle.measure == pytest.approx(math.pi)
    x = draw(circle)
    offset = x - np.array([1.0, 2.0])
    np.testing.assert_allclose(np.linalg.norm(offset, axis=1), 0.5, atol=1e-5)
    angle = np.arctan2(offset[:, 1], offset[:, 0])
    assert chisquare(np.histogram(angle, bins=24, range=(-np.pi, np.pi))[0]).pvalue > P_MIN
    np.testing.assert_allclose(normals(circle, x), offset / 0.5, atol=1e-5)
    assert inside(circle, x).all()


def test_sphere_3d_is_uniform():
    sphere = Ball((0.0, 0.0, 0.0), 1.0).boundary
    x = draw(sphere)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert chisquare(np.histogram(x[:, 2], bins=20, range=(-1, 1))[0]).pvalue > P_MIN  # Archimedes
    phi = np.arctan2(x[:, 1], x[:, 0])
    assert chisquare(np.histogram(phi, bins=20, range=(-np.pi, np.pi))[0]).pvalue > P_MIN


def test_box_boundary_faces_by_area_and_corner_normals():
    box = Box((0.0, 0.0, 0.0), (2.0, 1.0, 1.0))
    faces = box.boundary
    assert faces.measure == pytest.approx(2 * (2 + 2 + 1))
    x = draw(faces)
    assert inside(faces, x).all()
    n = normals(faces, x)
    axis = np.argmax(np.abs(n), axis=1)
    face = 2 * axis + (n[np.arange(N), axis] > 0)  # (low, high) face per axis
    counts = np.bincount(face, minlength=6)
    area = np.array([1, 1, 2, 2, 2, 2], float)
    assert chisquare(counts, area / area.sum() * N).pvalue > P_MIN
    square = Box((0.0, 0.0), (1.0, 1.0)).boundary
    probes = jnp.asarray([[0.0, 0.0], [1.0, 1.0], [1.0, 0.5], [0.3, 0.0]])
    expected = [[-1, -1], [1, 1], [np.sqrt(2), 0], [0, -np.sqrt(2)]]
    np.testing.assert_allclose(square.normal(probes), np.array(expected) / np.sqrt(2), atol=1e-6)
    assert not inside(square, [[0.5, 0.5]]).any()


def test_polygon_boundary_by_length_and_outward_normals():
    edges = Polygon(L_SHAPE).boundary
    assert edges.measure == pytest.approx(8.0)
    x = draw(edges)
    v = np.asarray(L_SHAPE, float)
    p, q = v, np.roll(v, -1, axis=0)
    t = np.clip(np.einsum("nkd,kd->nk", x[:, None] - p, q - p) / np.sum((q - p) ** 2, 1), 0, 1)
    dist = np.linalg.norm(x[:, None] - (p + t[..., None] * (q - p)), axis=-1)
    assert (dist.min(axis=1) < 1e-5).all()
    lengths = np.linalg.norm(q - p, axis=1)
    counts = np.bincount(dist.argmin(axis=1), minlength=len(v))
    assert chisquare(counts, lengths / lengths.sum() * N).pvalue > P_MIN
    n = normals(edges, x)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    away = ~np.isin(np.round(x, 3), v).all(axis=1)  # not at a vertex
    eps = 1e-3
    assert not in_l_shape(x[away] + eps * n[away]).any()
    assert in_l_shape(x[away] - eps * n[away]).all()
    at = normals(edges, [[1.5, 1.0], [2.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    s = 1 / np.sqrt(2)
    np.testing.assert_allclose(at, [[0, 1], [s, -s], [s, s], [-1, 0]], atol=1e-6)


def test_plate_boundary_pieces_in_proportion_and_normals():
    plate = plate_with_holes()
    edge = plate.boundary
    assert edge.measure == pytest.approx(4 + 4 * 2 * math.pi * 0.1, rel=0.02)
    x = draw(edge)
    assert inside(edge, x).all()
    centres = np.array([(0.3, 0.3), (0.3, 0.7), (0.7, 0.3), (0.7, 0.7)])
    gaps = np.linalg.norm(x[:, None] - centres[None], axis=-1)
    on_hole = np.abs(gaps - 0.1) < 1e-5
    on_square = (np.minimum(x, 1 - x).min(axis=1) < 1e-6)
    assert (on_hole.any(axis=1) ^ on_square).all()
    piece = np.where(on_square, 4, on_hole.argmax(axis=1))
    length = np.array([0.2 * math.pi] * 4 + [4.0])
    assert chisquare(np.bincount(piece, minlength=5), length / length.sum() * N).pvalue > P_MIN
    hole = on_hole[:, 0]
    offset = x[hole] - centres[0]
    angle = np.arctan2(offset[:, 1], offset[:, 0])
    assert chisquare(np.histogram(angle, bins=12, range=(-np.pi, np.pi))[0]).pvalue > P_MIN
    n = normals(edge, x)
    assert np.isfinite(n).all()
    np.testing.assert_allclose(n[hole], -offset / 0.1, atol=1e-4)  # flipped: out of the plate
    side = on_square & (x[:, 0] > 1 - 1e-6) & (x[:, 1] > 0.01) & (x[:, 1] < 0.99)
    np.testing.assert_allclose(n[side], np.tile([1.0, 0.0], (side.sum(), 1)), atol=1e-6)
    holes_only = edge.where(lambda y: jnp.min(jnp.minimum(y, 1 - y), axis=-1) > 1e-3)
    z = draw(holes_only, 2000)
    g = np.linalg.norm(z[:, None] - centres[None], axis=-1)
    assert (np.abs(g - 0.1) < 1e-5).any(axis=1).all()


def test_where_selects_the_cavity_lid():
    lid = Box((0.0, 0.0), (1.0, 1.0)).boundary.where(lambda x: x[..., 1] > 0.999)
    assert lid.measure == pytest.approx(1.0, rel=0.05)
    x = draw(lid)
    assert (x[:, 1] > 0.999).all()
    on_top = x[:, 1] == 1.0  # the rest: the top 0.001 of the side walls
    assert on_top.mean() > 0.99 and (x[~on_top, 0] * (1 - x[~on_top, 0]) == 0).all()
    x = x[on_top]
    assert chisquare(np.histogram(x[:, 0], bins=20, range=(0, 1))[0]).pvalue > P_MIN
    np.testing.assert_allclose(normals(lid, x[:100]), [[0.0, 1.0]] * 100, atol=1e-6)
    assert not inside(lid, [[0.5, 0.0], [0.5, 0.5]]).any()


def test_normal_derivative_on_the_unit_circle():
    circle = Disk((0.0, 0.0), 1.0).boundary
    x = jnp.asarray(draw(circle, 256))
    u = lambda p: p[0] ** 2 + p[1]
    expected = 2 * x[:, 0] ** 2 + x[:, 1]  # grad u . n = (2x, 1) . (x, y)
    np.testing.assert_allclose(normal_derivative(u, x, circle.normal(x)), expected, atol=1e-5)
    one = normal_derivative(u, x[0], circle.normal(x[:1])[0])
    np.testing.assert_allclose(one, expected[0], atol=1e-5)


# ---------------------------------------------------------------- time


def test_space_time_product_time_first():
    square = Box((0.0, 0.0), (1.0, 1.0))
    cylinder = square * Interval(0.0, 2.0)
    assert isinstance(cylinder, SpaceTime)
    assert (Interval(0.0, 2.0) * square) == cylinder
    assert cylinder.dim == 3 and cylinder.n_free == 3 and cylinder.measure == 2.0
    assert cylinder.bounding_box == Box((0.0, 0.0, 0.0), (2.0, 1.0, 1.0))
    x = draw(cylinder, 5000)
    assert ((x[:, 0] >= 0) & (x[:, 0] <= 2)).all()
    initial = draw(cylinder.initial, 100)
    np.testing.assert_array_equal(initial[:, 0], 0.0)
    np.testing.assert_allclose(normals(cylinder.initial, initial), [[-1, 0, 0]] * 100)
    boundary = cylinder.boundary
    y = draw(boundary)
    on_initial = y[:, 0] == 0.0
    expected = 1.0 / (1.0 + 2.0 * 4.0)  # space measure vs (t1 - t0) * perimeter
    assert abs(on_initial.mean() - expected) < 4 * math.sqrt(expected / N)
    lateral = y[~on_initial]
    assert (np.minimum(lateral[:, 1:], 1 - lateral[:, 1:]).min(axis=1) < 1e-6).all()
    n = normals(boundary, y)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(n[~on_initial, 0], 0.0)
    disk_time = Interval(0.0, 1.0) * (Disk((0.0, 0.0), 1.0) - Disk((0.0, 0.0), 0.5))
    z = draw(disk_time, 2000)
    assert inside(disk_time, z).all()
    r = np.linalg.norm(z[:, 1:], axis=1)
    assert ((r >= 0.5 - 1e-6) & (r <= 1 + 1e-6)).all()


# ---------------------------------------------------------------- dtypes, jit, designs


def test_float64_sampling():
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(0)
        for domain in (Ball((0.0, 0.0, 0.0), 1.0), Polygon(L_SHAPE),
                       Disk((0.0, 0.0), 1.0) - Disk((0.5, 0.0), 0.2)):
            x = jax.jit(lambda k, d=domain: d.sample(k, 500))(key)
            assert x.dtype == jnp.float64
            assert inside(domain, x).all()


def test_from_unit_takes_a_sobol_design_and_keep_inside_falls_back():
    from adapinn.samplers.density import keep_inside
    from adapinn.samplers.fixed import sobol

    plate = plate_with_holes()
    x = jax.jit(plate.from_unit)(sobol(jax.random.PRNGKey(0), 1024, plate.n_free))
    assert x.shape == (1024, 2) and inside(plate, x).all()
    moved = keep_inside(plate, x + 0.05, x)
    assert inside(plate, moved).all()
