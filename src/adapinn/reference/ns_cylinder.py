"""Finite-element reference for the DFG 2D-1 benchmark: steady flow past a cylinder.

Problem (Schaefer & Turek 1996, "Benchmark computations of laminar flow around a cylinder",
test case 2D-1)::

    -nu Lap u + (u . grad) u + grad p = 0,   div u = 0   in  Omega,
    Omega = [0, 2.2] x [0, 0.41] minus the disc |x - (0.2, 0.2)| < 0.05,   nu = 1e-3,
    u = (4 U_m y (0.41 - y) / 0.41^2, 0),  U_m = 0.3          on the inflow x = 0,
    u = 0                                   on the walls y = 0, 0.41 and on the cylinder,
    nu du/dn - p n = 0                      ("do nothing") on the outflow x = 2.2.

Mean inflow velocity U = 2 U_m / 3 = 0.2, diameter D = 0.1, Re = U D / nu = 20.  Outputs:
c_D = 2 F_D / (U^2 D), c_L = 2 F_L / (U^2 D) (rho = 1) and delta_p = p(0.15, 0.2) - p(0.25, 0.2).
Published values (Nabh 1998, confirmed by John): c_D = 5.57953523384, c_L = 0.010618948146,
delta_p = 0.11752016697.

Discretisation: Taylor-Hood P2/P1 (inf-sup stable) on an isoparametric (quadratic) triangle
mesh, so that the P2 nodes on the cylinder lie on the circle.  Weak form (Laplacian form, whose
natural boundary condition is the do-nothing condition above):

    nu (grad u, grad v) + ((u . grad) u, v) - (p, div v) = 0,   (q, div u) = 0.

The Stokes solution is the initial guess of Newton's method (exact Jacobian, convective term
linearised as (w . grad) du + (du . grad) w), which converges quadratically: the l2 residual on
the free DOFs is 3e-13 - 1.2e-12 after 4 steps (stop at ``tol`` = 1e-10); every linear system
is solved by a sparse direct solver (SuperLU).

Mesh, generated here from numpy/scipy only: a Persson-Strang ("distmesh") point cloud graded
towards the cylinder (size h = min(h_c + 0.3 d, h_max), d the distance to the circle, h_c the
spacing of the uniformly spaced points on the circle, which include the points (0.15, 0.2) and
(0.25, 0.2)), points on all boundaries, ``scipy.spatial.Delaunay``, triangles inside the
cylinder dropped; level L refines it uniformly L times, projecting new circle nodes onto the
circle, and the edge midpoints on the circle are then moved onto it (curved P2 geometry).

Forces: volume-integral formulation (John 2004, "Reference values for drag and lift of a
two-dimensional time-dependent flow around a cylinder"; Braack & Richter)::

    F_D = -[nu (grad u, grad v_d) + ((u . grad) u, v_d) - (p, div v_d)],

with v_d the finite-element function equal to (1, 0) at the velocity nodes on the cylinder and
0 at all others; F_L likewise with (0, 1).  It is the discrete momentum residual tested with
v_d, which converges at twice the rate of a line integral of the stress.  delta_p is the value
of the P1 pressure at the two mesh nodes (0.15, 0.2) and (0.25, 0.2) on the circle, i.e. the
finite-element interpolant evaluated there.

Measured (relative errors against the published values; wall time of the whole call, mesh
generation included, on a shared 2-core CPU; Newton residual <= 1.2e-12 after 4 steps each):

    level  triangles  DOFs     c_D               c_L                 delta_p            time
    0       1 578       7 551  5.579029 (9.1e-5)  0.011430  (7.6e-2)  0.117340 (1.5e-3)   1.7 s
    1       6 312      29 304  5.579489 (8.3e-6)  0.0107025 (7.9e-3)  0.117558 (3.2e-4)   5.1 s
    2      25 248     115 416  5.579530 (9.9e-7)  0.0106244 (5.1e-4)  0.117526 (5.2e-5)    26 s

Acceptance (met by the default level 2, and already by level 1): c_D within 0.1 %, c_L within
2 %, delta_p within 0.1 %.  Against jaxpi's finite-element solution of the same problem
(36,934 nodes; pressure compared after removing the mean), the relative L2 differences of
(u, v, p) are (1.5e-4, 9.0e-4, 1.9e-3) at level 1 and (7.1e-5, 4.6e-4, 1.4e-3) at level 2,
i.e. limited by that (coarser) solution.
"""

from __future__ import annotations

import time

import numpy as np

CHANNEL = (2.2, 0.41)
CENTRE = (0.2, 0.2)
RADIUS = 0.05
NU = 1e-3
U_MAX = 0.3
U_MEAN = 2.0 * U_MAX / 3.0
DIAMETER = 2.0 * RADIUS

#: Published benchmark values (Nabh 1998 / John 2004), used for the relative errors reported.
C_D_REF = 5.57953523384
C_L_REF = 0.010618948146
DELTA_P_REF = 0.11752016697

#: Base mesh: number of points on the circle, size growth away from it and largest size.
N_CIRCLE = 48
GRADING = 0.3
H_MAX = 0.04
DEFAULT_LEVEL = 2


def _import_skfem():
    try:
        import skfem
    except ImportError as exc:  # pragma: no cover - exercised only without the dependency
        raise ImportError(
            "ns_cylinder_reference needs scikit-fem: pip install scikit-fem (>= 10)"
        ) from exc
    return skfem


def inflow_profile(y: np.ndarray) -> np.ndarray:
    """Parabolic inflow u(0, y) = 4 U_m y (H - y) / H^2."""
    height = CHANNEL[1]
    return 4.0 * U_MAX * y * (height - y) / height**2


# ---------------------------------------------------------------------------------------------
# Mesh generation (numpy / scipy only)
# ---------------------------------------------------------------------------------------------


def _sdf(p: np.ndarray) -> np.ndarray:
    """Signed distance to the boundary of the domain (negative inside)."""
    length, height = CHANNEL
    x, y = p[:, 0], p[:, 1]
    d_rect = -np.minimum(np.minimum(x, length - x), np.minimum(y, height - y))
    d_circ = np.hypot(x - CENTRE[0], y - CENTRE[1]) - RADIUS
    return np.maximum(d_rect, -d_circ)


def _size(p: np.ndarray, h_c: float) -> np.ndarray:
    d = np.maximum(np.hypot(p[:, 0] - CENTRE[0], p[:, 1] - CENTRE[1]) - RADIUS, 0.0)
    return np.minimum(h_c + GRADING * d, H_MAX)


def _boundary_points(h_c: float) -> np.ndarray:
    """Points on the circle (uniform, incl. angles 0 and pi) and on the four channel sides."""
    length, height = CHANNEL
    theta = 2.0 * np.pi * np.arange(N_CIRCLE) / N_CIRCLE
    circle = np.column_stack(
        (CENTRE[0] + RADIUS * np.cos(theta), CENTRE[1] + RADIUS * np.sin(theta))
    )
    sides = []
    for a, b in (
        ((0, 0), (length, 0)),
        ((length, 0), (length, height)),
        ((length, height), (0, height)),
        ((0, height), (0, 0)),
    ):
        a, b = np.asarray(a, float), np.asarray(b, float)
        # march along the side with the local size, then rescale to hit the end point exactly
        s, pos, total = [0.0], a, np.linalg.norm(b - a)
        while s[-1] < total:
            h = _size(pos[None], h_c)[0]
            s.append(s[-1] + h)
            pos = a + (b - a) * min(s[-1] / total, 1.0)
        s = np.asarray(s) * total / s[-1]
        sides.append(a + (b - a) * (s[:-1] / total)[:, None])
    return np.vstack([circle, *sides])


def _base_mesh(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Graded base triangulation (points (n, 2), triangles (m, 3)) by a distmesh iteration."""
    from scipy.spatial import Delaunay

    length, height = CHANNEL
    h_c = 2.0 * np.pi * RADIUS / N_CIRCLE
    fixed = _boundary_points(h_c)
    n_fix = len(fixed)
    # initial interior points: triangular lattice of spacing h_c, thinned with prob (h_c/h)^2
    xs = np.arange(0.0, length, h_c)
    ys = np.arange(0.0, height, h_c * np.sqrt(3.0) / 2.0)
    gx, gy = np.meshgrid(xs, ys)
    gx = gx + (np.arange(len(ys))[:, None] % 2) * h_c / 2.0
    lattice = np.column_stack((gx.ravel(), gy.ravel()))
    hf = _size(lattice, h_c)
    lattice = lattice[_sdf(lattice) < -0.5 * hf]
    rng = np.random.default_rng(seed)
    keep = rng.random(len(lattice)) < (h_c / _size(lattice, h_c)) ** 2
    p = np.vstack([fixed, lattice[keep]])

    def triangulate(p):
        tri = Delaunay(p).simplices
        centroid = p[tri].mean(axis=1)
        tri = tri[_sdf(centroid) < -1e-3 * h_c]
        return tri

    dt, f_scale = 0.2, 1.2
    p_old = np.full_like(p, np.inf)
    for _ in range(300):
        if np.max(np.hypot(*(p - p_old).T)) > 0.1 * h_c:
            p_old = p.copy()
            tri = triangulate(p)
            bars = np.vstack([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]])
            bars = np.unique(np.sort(bars, axis=1), axis=0)
        vec = p[bars[:, 0]] - p[bars[:, 1]]
        blen = np.hypot(vec[:, 0], vec[:, 1])
        hbar = _size(0.5 * (p[bars[:, 0]] + p[bars[:, 1]]), h_c)
        l0 = hbar * f_scale * np.sqrt(np.sum(blen**2) / np.sum(hbar**2))
        force = np.maximum(l0 - blen, 0.0)
        fvec = (force / blen)[:, None] * vec
        ftot = np.zeros_like(p)
        np.add.at(ftot, bars[:, 0], fvec)
        np.add.at(ftot, bars[:, 1], -fvec)
        ftot[:n_fix] = 0.0
        p = p + dt * ftot
        # interior points that left the domain are pulled back inside
        d = _sdf(p)
        out = np.flatnonzero(d > -0.25 * _size(p, h_c))
        out = out[out >= n_fix]
        if len(out):
            eps = 1e-8
            grad = np.column_stack(
                [
                    (_sdf(p[out] + [eps, 0.0]) - d[out]) / eps,
                    (_sdf(p[out] + [0.0, eps]) - d[out]) / eps,
                ]
            )
            target = -0.25 * _size(p[out], h_c)
            p[out] -= ((d[out] - target) / np.maximum(np.sum(grad**2, 1), 1e-12))[:, None] * grad
        move = np.hypot(*(dt * ftot[n_fix:]).T)
        if move.max() < 1e-3 * h_c:
            break
    # drop interior points that crowd the boundary points, then triangulate for good
    d = _sdf(p)
    crowd = np.flatnonzero(d[n_fix:] > -0.4 * _size(p[n_fix:], h_c)) + n_fix
    p = np.delete(p, crowd, axis=0)
    tri = triangulate(p)
    used = np.unique(tri)
    remap = np.full(len(p), -1)
    remap[used] = np.arange(len(used))
    return p[used], remap[tri]


def _on_circle(x: np.ndarray, y: np.ndarray, tol: float) -> np.ndarray:
    return np.abs(np.hypot(x - CENTRE[0], y - CENTRE[1]) - RADIUS) < tol


def _snap_to_circle(p: np.ndarray, idx: np.ndarray) -> np.ndarray:
    p = p.copy()
    dx, dy = p[0, idx] - CENTRE[0], p[1, idx] - CENTRE[1]
    r = np.hypot(dx, dy)
    p[0, idx] = CENTRE[0] + RADIUS * dx / r
    p[1, idx] = CENTRE[1] + RADIUS * dy / r
    return p


def build_mesh(level: int):
    """The isoparametric MeshTri2 of the given refinement level (and its MeshTri1 skeleton)."""
    skfem = _import_skfem()
    pts, tri = _base_mesh()
    mesh = skfem.MeshTri1(pts.T.copy(), tri.T.copy())
    tol = 1e-6
    for _ in range(level):
        mesh = mesh.refined()
        # nodes created on boundary facets of the circle are moved onto the circle
        bnodes = np.unique(mesh.facets[:, mesh.boundary_facets()])
        x, y = mesh.p[0, bnodes], mesh.p[1, bnodes]
        near = bnodes[np.hypot(x - CENTRE[0], y - CENTRE[1]) < RADIUS + 1e-2 * RADIUS]
        mesh = skfem.MeshTri1(_snap_to_circle(mesh.p, near), mesh.t)
    quad = skfem.MeshTri2.from_mesh(mesh)
    # facet midpoints of boundary facets on the circle -> onto the circle
    bfac = quad.boundary_facets()
    mid = quad.p[:, quad.facets[:, bfac]].mean(axis=1)
    circ = bfac[np.hypot(mid[0] - CENTRE[0], mid[1] - CENTRE[1]) < RADIUS + 1e-2 * RADIUS]
    mdofs = quad.dofs.get_facet_dofs(circ).flatten()
    from dataclasses import replace

    quad = replace(quad, doflocs=_snap_to_circle(quad.doflocs, mdofs))
    assert np.all(_on_circle(*quad.doflocs[:, mdofs], tol))
    return quad, mesh


# ---------------------------------------------------------------------------------------------
# Navier-Stokes solve
# ---------------------------------------------------------------------------------------------


def _classify_boundary(mesh):
    """Boundary facet indices: inflow, walls, cylinder, outflow."""
    length, height = CHANNEL
    bfac = mesh.boundary_facets()
    mid = mesh.p[:, mesh.facets[:, bfac]].mean(axis=1)
    x, y = mid
    tol = 1e-9
    inflow = bfac[x < tol]
    outflow = bfac[x > length - tol]
    walls = bfac[((y < tol) | (y > height - tol)) & (x > tol) & (x < length - tol)]
    cyl = bfac[np.hypot(x - CENTRE[0], y - CENTRE[1]) < RADIUS + 1e-2 * RADIUS]
    assert len(inflow) + len(outflow) + len(walls) + len(cyl) == len(bfac)
    return inflow, walls, cyl, outflow


def ns_cylinder_reference(
    level: int = DEFAULT_LEVEL, tol: float = 1e-10, max_newton: int = 20
) -> dict:
    """Solve DFG 2D-1 with P2/P1 Taylor-Hood + Newton on mesh ``level``; see the module docstring.

    Returns a dict with ``points`` (n, 2), the P2 node locations (mesh vertices followed by the
    edge midpoints, curved ones on the cylinder), ``u``, ``v``, ``p`` (n,) the nodal values
    there (p of the P1 pressure, interpolated at the midpoints), ``triangles`` (m, 3) the
    vertex indices of the triangles (rows of ``points``; see :func:`ns_cylinder_interpolate`),
    floats ``c_d``, ``c_l``,
    ``delta_p``, their relative errors ``rel_err`` (dict) against the published values, and the
    mesh/solver info ``level``, ``n_triangles``, ``n_vertices``, ``n_dofs``, ``newton_steps``,
    ``residual``, ``seconds``.
    """
    skfem = _import_skfem()
    from scipy.sparse import bmat
    from scipy.sparse.linalg import spsolve
    from skfem import BilinearForm, ElementTriP1, ElementTriP2, ElementVector, asm
    from skfem.helpers import ddot, div, grad

    t0 = time.perf_counter()
    mesh, _ = build_mesh(level)
    basis_u = skfem.Basis(mesh, ElementVector(ElementTriP2()), intorder=5)
    basis_p = basis_u.with_element(ElementTriP1())
    n_u, n_p = basis_u.N, basis_p.N

    @BilinearForm
    def viscous(u, v, _):
        return NU * ddot(grad(u), grad(v))

    @BilinearForm
    def divergence(u, q, _):
        return div(u) * q

    @BilinearForm
    def convection(u, v, w):
        # Picard part (w . grad) u
        return np.einsum("ij...,j...,i...->...", grad(u), w["w"], v)

    @BilinearForm
    def convection_jac(u, v, w):
        # Newton part (u . grad) w
        return np.einsum("ij...,j...,i...->...", w["w"].grad, u, v)

    a_mat = asm(viscous, basis_u)
    b_mat = asm(divergence, basis_u, basis_p)

    inflow, walls, cyl, _ = _classify_boundary(mesh)
    d_in = basis_u.get_dofs(inflow)
    d_wall = basis_u.get_dofs(walls)
    d_cyl = basis_u.get_dofs(cyl)
    dirichlet = np.unique(np.concatenate([d_in.all(), d_wall.all(), d_cyl.all()]))
    free = np.setdiff1d(np.arange(n_u + n_p), dirichlet)

    x = np.zeros(n_u + n_p)
    in_u = d_in.all("u^1")
    x[in_u] = inflow_profile(basis_u.doflocs[1, in_u])

    def solve(mat, rhs):
        mat = mat.tocsr()
        dx = np.zeros_like(rhs)
        dx[free] = spsolve(mat[free][:, free].tocsc(), rhs[free])
        return dx

    # Stokes initial guess
    stokes = bmat([[a_mat, -b_mat.T], [-b_mat, None]], "csr")
    x = x + solve(stokes, -(stokes @ x))

    def residual_and_picard(x):
        w = basis_u.interpolate(x[:n_u])
        c_mat = asm(convection, basis_u, w=w)
        k_mat = bmat([[a_mat + c_mat, -b_mat.T], [-b_mat, None]], "csr")
        return k_mat @ x, w, c_mat

    steps, res = 0, np.inf
    while steps < max_newton and res >= tol:
        steps += 1
        r_full, w, c_mat = residual_and_picard(x)
        j_mat = bmat(
            [[a_mat + c_mat + asm(convection_jac, basis_u, w=w), -b_mat.T], [-b_mat, None]], "csr"
        )
        x = x + solve(j_mat, -r_full)
        r_full, _, _ = residual_and_picard(x)
        res = np.linalg.norm(r_full[free])
    uh, ph = x[:n_u], x[n_u:]

    # forces: momentum residual tested with v_d = (1, 0) / (0, 1) at the cylinder nodes
    r_mom = r_full[:n_u]
    f_d = -r_mom[d_cyl.all("u^1")].sum()
    f_l = -r_mom[d_cyl.all("u^2")].sum()
    scale = 2.0 / (U_MEAN**2 * DIAMETER)
    c_d, c_l = scale * f_d, scale * f_l

    # pressure difference: P1 nodal values at the circle nodes (0.15, 0.2) and (0.25, 0.2)
    verts = mesh.p[:, : mesh.nvertices]

    def p_at(pt):
        k = int(np.argmin(np.hypot(verts[0] - pt[0], verts[1] - pt[1])))
        assert np.hypot(*(verts[:, k] - pt)) < 1e-12
        return ph[k]

    delta_p = p_at((CENTRE[0] - RADIUS, CENTRE[1])) - p_at((CENTRE[0] + RADIUS, CENTRE[1]))

    # nodal values at the P2 nodes: vertices first, then facet midpoints
    points = basis_u.doflocs[:, 0::2].T.copy()
    p_nodes = np.concatenate([ph, ph[mesh.facets].mean(axis=0)])
    assert len(p_nodes) == len(points)
    seconds = time.perf_counter() - t0
    return {
        "points": points,
        "u": uh[0::2].copy(),
        "v": uh[1::2].copy(),
        "p": p_nodes,
        "triangles": mesh.t.T.copy(),
        "c_d": float(c_d),
        "c_l": float(c_l),
        "delta_p": float(delta_p),
        "rel_err": {
            "c_d": abs(c_d / C_D_REF - 1.0),
            "c_l": abs(c_l / C_L_REF - 1.0),
            "delta_p": abs(delta_p / DELTA_P_REF - 1.0),
        },
        "level": level,
        "n_triangles": mesh.t.shape[1],
        "n_vertices": mesh.nvertices,
        "n_dofs": n_u + n_p,
        "newton_steps": steps,
        "residual": float(res),
        "seconds": seconds,
    }


def ns_cylinder_interpolate(ref: dict, xy: np.ndarray) -> dict:
    """Evaluate the finite-element solution ``ref`` (from :func:`ns_cylinder_reference`) at
    points ``xy`` (k, 2) of the domain: returns ``{"u", "v", "p"}`` arrays (k,).

    The P2 (isoparametric) interpolant of the nodal values is evaluated exactly (P1 pressure is
    represented exactly in P2).  Each point is located among the triangles with the 8 nearest
    centroids, taking the one it is most inside by barycentric coordinates of the straight
    triangle (so points between a curved edge and its chord, or a rounding error outside the
    domain, go to the nearest element rather than being rejected).
    """
    skfem = _import_skfem()
    from dataclasses import replace

    from scipy.sparse import coo_matrix
    from scipy.spatial import cKDTree

    points, tri = ref["points"], ref["triangles"]
    n_vert = int(tri.max()) + 1
    lin = skfem.MeshTri1(points[:n_vert].T.copy(), tri.T.copy())
    quad = skfem.MeshTri2.from_mesh(lin)
    quad = replace(quad, doflocs=points.T.copy())
    basis = skfem.Basis(quad, skfem.ElementTriP2())
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    n_pts, k = len(xy), min(8, tri.shape[0])
    centroids = points[tri].mean(axis=1)
    cand = cKDTree(centroids).query(xy, k)[1].reshape(n_pts, k)
    # barycentric coordinates in the straight (vertex) triangles pick the cell ...
    v0, v1, v2 = (points[tri[cand, j]] for j in range(3))  # (n_pts, k, 2) each
    e1, e2, dx = v1 - v0, v2 - v0, xy[:, None, :] - v0
    det = e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]
    b1 = (dx[..., 0] * e2[..., 1] - dx[..., 1] * e2[..., 0]) / det
    b2 = (e1[..., 0] * dx[..., 1] - e1[..., 1] * dx[..., 0]) / det
    inside = np.minimum(np.minimum(b1, b2), 1.0 - b1 - b2)
    best = np.argmax(inside, axis=1)
    cells = cand[np.arange(n_pts), best]
    # ... and the curved (isoparametric) map is inverted in it
    local = basis.mapping.invF(xy.T[:, :, None], tind=cells)
    phis = np.array(
        [basis.elem.gbasis(basis.mapping, local, j, tind=cells)[0] for j in range(basis.Nbfun)]
    ).reshape(basis.Nbfun, n_pts)
    rows = np.tile(np.arange(n_pts), basis.Nbfun)
    cols = basis.element_dofs[:, cells].ravel()
    probe = coo_matrix((phis.ravel(), (rows, cols)), shape=(n_pts, basis.N)).tocsr()
    return {key: probe @ ref[key] for key in ("u", "v", "p")}
