"""PINNacle's benchmark cases (Hao et al., "PINNacle: A Comprehensive Benchmark of
Physics-Informed Neural Networks for Solving PDEs", NeurIPS 2024 D&B, arXiv 2306.08827;
github.com/i207M/PINNacle, MIT), each defined exactly as PINNacle's src/pde/*.py defines it,
with its reference data packaged under `data/` (PINNacle's licence with it).

`CASES` maps a PINNacle case name to our problem name; `CASE_INFO` adds what a protocol that
reproduces PINNacle needs: its point-count multiplier (x4 for Heat2d-MS, PNd and HNd,
`training_points(mul=4)`; 1 for the others) and the number of PINNacle's training points that
each of our conditions would see (DeepXDE's samplers: 8192 interior, 2048 boundary and, for
PINNacle's time-dependent classes, 2048 initial points, times the multiplier; see each module).
"""

from __future__ import annotations

import dataclasses

from adapinn.problems.pinnacle.burgers1d import pinnacle_burgers1d
from adapinn.problems.pinnacle.heat2d_ms import pinnacle_heat2d_ms
from adapinn.problems.pinnacle.heat_nd import pinnacle_heat_nd
from adapinn.problems.pinnacle.ns2d_c import pinnacle_ns2d_c
from adapinn.problems.pinnacle.poisson2d_c import pinnacle_poisson2d_c
from adapinn.problems.pinnacle.poisson_nd import pinnacle_poisson_nd
from adapinn.problems.pinnacle.wave1d import pinnacle_wave1d

DOMAIN_POINTS, BOUNDARY_POINTS, INITIAL_POINTS = 8192, 2048, 2048
"""PINNacle's defaults (src/pde/baseclass.py), before the multiplier."""


@dataclasses.dataclass(frozen=True)
class PinnacleCase:
    """One PINNacle case and how PINNacle trains it.

    Attributes:
        name: PINNacle's case name, e.g. "Heat2d-MS" (the published table's).
        problem: our registered problem name.
        point_multiplier: PINNacle's `training_points(mul=...)` for the case.
        pinnacle_class: the class in PINNacle's src/pde/.
        condition_points: (condition, points) pairs: how many of PINNacle's training points
            each of our conditions gets ("pde": the interior set; DeepXDE also evaluates the
            PDE on the boundary and initial points).
        reference_file: the packaged data file (None: analytic).
    """

    name: str
    problem: str
    point_multiplier: int
    pinnacle_class: str
    condition_points: tuple[tuple[str, int], ...]
    reference_file: str | None = None

    @property
    def points(self) -> dict[str, int]:
        """{condition: PINNacle's point count}."""
        return dict(self.condition_points)


def _case(name: str, problem: str, cls: str, points: dict[str, int], mul: int = 1,
          file: str | None = None) -> PinnacleCase:
    """A case whose per-condition `points` (at multiplier 1) are scaled by `mul`."""
    return PinnacleCase(name, problem, mul, cls, tuple((k, v * mul) for k, v in points.items()),
                        file)


CASE_INFO: dict[str, PinnacleCase] = {c.name: c for c in (
    _case("Burgers1d-C", "pinnacle_burgers1d", "Burgers1D",
          {"pde": DOMAIN_POINTS, "ic": INITIAL_POINTS, "bc": BOUNDARY_POINTS},
          file="burgers1d.dat"),
    _case("Poisson2d-C", "pinnacle_poisson2d_c", "Poisson2D_Classic",  # nested CSG: 1/16 square
          {"pde": DOMAIN_POINTS, "bc_square": 128, "bc_disks": 1920},
          file="poisson1_cg_data.dat"),
    _case("Wave1d-C", "pinnacle_wave1d", "Wave1D",  # one boundary set on the (x, t) perimeter
          {"pde": DOMAIN_POINTS, "ic": 512, "ic_t": 512, "bc": 1024}),
    _case("Heat2d-MS", "pinnacle_heat2d_ms", "Heat2D_Multiscale",
          {"pde": DOMAIN_POINTS, "ic": INITIAL_POINTS, "bc": BOUNDARY_POINTS}, mul=4),
    _case("NS2d-C", "pinnacle_ns2d_c", "NS2D_LidDriven",  # boundary split by length
          {"pde": DOMAIN_POINTS, "lid": 512, "walls": 1536, "gauge": 1},
          file="lid_driven_a4.dat"),
    _case("PNd", "pinnacle_poisson_nd", "PoissonND",  # Dirichlet on the whole boundary
          {"pde": DOMAIN_POINTS, "bc": BOUNDARY_POINTS}, mul=4),
    _case("HNd", "pinnacle_heat_nd", "HeatND",
          {"pde": DOMAIN_POINTS, "ic": INITIAL_POINTS, "bc": BOUNDARY_POINTS}, mul=4),
)}
"""The PINNacle cases by PINNacle's name."""

CASES: dict[str, str] = {name: case.problem for name, case in CASE_INFO.items()}
"""PINNacle case name -> our problem name."""

__all__ = [
    "CASES", "CASE_INFO", "PinnacleCase", "pinnacle_burgers1d", "pinnacle_heat2d_ms",
    "pinnacle_heat_nd", "pinnacle_ns2d_c", "pinnacle_poisson2d_c", "pinnacle_poisson_nd",
    "pinnacle_wave1d",
]
