"""High-accuracy reference solutions of the PDE benchmarks, with an on-disk cache.

- Burgers: exact Cole-Hopf solution by stabilised Gauss-Hermite quadrature.
- Allen-Cahn: Fourier pseudo-spectral ETDRK4 (Cox & Matthews 2002; Kassam & Trefethen 2005).
"""

from .allen_cahn import allen_cahn_reference, allen_cahn_solution
from .burgers import burgers_reference, burgers_solution
from .cache import cache_dir, cached_reference, compute_reference, reference_path

__all__ = [
    "allen_cahn_reference",
    "allen_cahn_solution",
    "burgers_reference",
    "burgers_solution",
    "cache_dir",
    "cached_reference",
    "compute_reference",
    "reference_path",
]
