"""Published ground-state energies per site of the J1-J2 model, the yardstick of every relative
error here, and the floor no state's energy goes below; no NetKet, so that tables and figures
can read them without loading JAX."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ReferenceEnergy:
    """A published ground-state energy per site, in units of J1."""

    value: float
    error: float
    source: str


REFERENCE_ENERGIES: dict[tuple[int, float], ReferenceEnergy] = {
    (4, 0.5): ReferenceEnergy(-0.52862021, 0.0,
                              "exact diagonalization (computed: tests/test_system.py)"),
    (4, 0.0): ReferenceEnergy(-0.70178020, 0.0,
                              "exact diagonalization (computed: tests/test_system.py)"),
    (6, 0.5): ReferenceEnergy(-0.50380965, 0.0,
                              "exact diagonalization, Schulz, Ziman, Poilblanc 1996"),
    (6, 0.0): ReferenceEnergy(-0.67887215, 0.0, "exact diagonalization"),
    (8, 0.5): ReferenceEnergy(-0.49906, 1e-5, "variance extrapolation, Hu et al. 2013"),
    (10, 0.5): ReferenceEnergy(-0.497715, 9e-6, "zero-variance extrapolation, Chen and Heyl 2024"),
}
"""Reference ground-state energies per site keyed by (L, J2/J1); see shared/paper.md."""


def reference_energy(L: int, J2: float) -> ReferenceEnergy | None:
    """The reference energy per site for (L, J2), or None when none is known."""
    return REFERENCE_ENERGIES.get((int(L), round(float(J2), 6)))


def energy_floor(J2: float) -> float:
    """The least energy per site (units of J1, S = 1/2) any state of the J1-J2 model on an
    L x L torus (L >= 3) has: each site has two J1 and two J2 bonds, and a bond's J S_i.S_j is at
    least -3|J|/4 (the singlet's -3/4 for J > 0, the triplet's 1/4 for J < 0). An estimate
    below it is the estimator failing (a heavy tail as a run diverges), not a state."""
    return -0.75 * 2 * (1 + abs(J2))
