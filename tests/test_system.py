"""The J1-J2 model: exact energies, zero-variance exact state, units, bad input."""

import numpy as np
import pytest

from vitnqs import build_system, energy_per_site, exact_ground_state, reference_energy
from vitnqs.reference import energy_floor


@pytest.mark.parametrize(("J2", "expected"), [(0.5, -0.52862021), (0.0, -0.70178020)])
def test_exact_diagonalization_4x4(J2, expected):
    energy, _ = exact_ground_state(build_system(4, J2))
    assert abs(energy - expected) < 1e-8
    assert abs(reference_energy(4, J2).value - energy) < 1e-8


def heisenberg_from_bonds(states: np.ndarray, L: int, J2: float):
    """H = sum over bonds J_b S_i.S_j (S = 1/2, periodic L x L, J1 = 1), built here from the bond
    list without NetKet, on the basis `states` (+-1 spins, closed under exchanges):
    S_i.S_j = s_i s_j / 4 on the diagonal, 1/2 between states that differ by swapping i, j."""
    from scipy import sparse

    def site(x, y):
        return (x % L) * L + (y % L)

    bonds = [(site(x, y), site(x + dx, y + dy), J)
             for x in range(L) for y in range(L)
             for (dx, dy), J in [((1, 0), 1.0), ((0, 1), 1.0), ((1, 1), J2), ((1, -1), J2)]]
    keys = (states > 0) @ (1 << np.arange(states.shape[1]))
    order = np.argsort(keys)
    diagonal = np.zeros(len(states))
    rows, cols = [], []
    values = []
    for i, j, J in bonds:
        diagonal += J * states[:, i] * states[:, j] / 4
        flip = np.flatnonzero(states[:, i] != states[:, j])
        swapped = states[flip].copy()
        swapped[:, [i, j]] = swapped[:, [j, i]]
        target = order[np.searchsorted(keys[order], (swapped > 0) @ (1 << np.arange(L * L)))]
        rows.append(flip), cols.append(target), values.append(np.full(len(flip), J / 2))
    n = len(states)
    off = sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                            shape=(n, n))
    return off + sparse.diags(diagonal)


@pytest.mark.parametrize("J2", [0.0, 0.5])
def test_exact_ground_state_is_the_ground_state_of_the_bond_hamiltonian(J2):
    """Independent of NetKet's operator and of energy_per_site: the state exact_ground_state
    returns is an eigenvector of H built from the bond list (S = 1/2, J1 = 1) with eigenvalue
    N times its energy per site, that eigenvalue is H's lowest, and a state that is not an
    eigenvector (random signs on every configuration) has local energies far from constant."""
    from scipy.sparse.linalg import eigsh

    system = build_system(4, J2)
    energy, psi = exact_ground_state(system)
    states = np.asarray(system.hilbert.all_states())
    assert len(states) == 12870
    h = heisenberg_from_bonds(states, 4, J2)
    assert abs(h - h.T).max() == 0
    residual = h @ psi - 16 * energy * psi
    assert np.linalg.norm(residual) < 1e-8 * np.linalg.norm(psi)
    (lowest,) = eigsh(h, k=1, which="SA", return_eigenvectors=False)
    assert abs(lowest / 16 - energy) < 1e-9
    other = np.random.default_rng(0).choice([-1.0, 1.0], size=len(states))
    e_loc = (h @ other) / other / 16
    assert np.std(e_loc) > 0.1


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


@pytest.mark.parametrize("J2", [0.0, 0.5, -0.5, 2.0])
def test_energy_floor_lies_below_every_state_of_the_4x4_torus(J2):
    """The floor bounds every state: it lies below the exact 4x4 ground state (the Sz = 0
    sector holds a ground state of this SU(2)-symmetric model), with a ferromagnetic J2 too."""
    from scipy.sparse.linalg import eigsh

    system = build_system(4, J2)
    (lowest,) = eigsh(system.hamiltonian.to_sparse(), k=1, which="SA",
                      return_eigenvectors=False)
    assert lowest / (4 * 16) > energy_floor(J2)
