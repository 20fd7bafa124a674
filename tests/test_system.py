"""The J1-J2 model: exact energies, zero-variance exact state, units, bad input."""

import numpy as np
import pytest

from vitnqs import build_system, energy_per_site, exact_ground_state, reference_energy


@pytest.mark.parametrize(("J2", "expected"), [(0.5, -0.52862021), (0.0, -0.70178020)])
def test_exact_diagonalization_4x4(J2, expected):
    energy, _ = exact_ground_state(build_system(4, J2))
    assert abs(energy - expected) < 1e-8
    assert abs(reference_energy(4, J2).value - energy) < 1e-8


def test_exact_ground_state_has_zero_variance_local_energies(system_4x4):
    energy, psi = exact_ground_state(system_4x4)
    states = system_4x4.hilbert.all_states()
    h = system_4x4.hamiltonian.to_sparse()
    # local energy E_loc(s) = (H psi)(s) / psi(s) on every configuration with weight
    weight = np.abs(psi) ** 2
    support = weight > 1e-12 * weight.max()
    e_loc = (h @ psi)[support] / psi[support]
    e_loc_per_site = energy_per_site(e_loc, system_4x4.n_sites)
    assert len(states) == 12870
    assert np.max(np.abs(e_loc_per_site - energy)) < 1e-9


def test_energy_units_spin_half():
    # one bond, two spins in the singlet: S1.S2 = -3/4; NetKet's Pauli operator gives -3.
    # Per site (N = 2), in units of J1 with S = 1/2: -3/8 = -3 / (4 * 2).
    assert energy_per_site(-3.0, 2) == -3 / 8


def test_hamiltonian_bonds_4x4(system_4x4):
    # N nearest-neighbour bonds of colour 0 and N next-nearest of colour 1 on each site pair
    edges = system_4x4.graph.edges(return_color=True)
    colours = np.array([c for (_, _, c) in edges])
    assert np.sum(colours == 0) == 2 * 16 and np.sum(colours == 1) == 2 * 16


def test_hilbert_space_is_sz_zero_sector(system_4x4):
    states = system_4x4.hilbert.all_states()
    assert np.all(states.sum(axis=1) == 0)


@pytest.mark.parametrize("L", [3, 5])
def test_odd_number_of_sites_is_refused(L):
    with pytest.raises(ValueError, match=f"L={L}"):
        build_system(L, 0.5)


def test_unknown_reference_is_none():
    assert reference_energy(12, 0.5) is None
    assert reference_energy(10, 0.5).value == -0.497715
