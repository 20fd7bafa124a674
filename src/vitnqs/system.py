"""The J1-J2 Heisenberg model on an L x L torus, from NetKet objects only.

Energies leave this module per site, in units of J1, with S = 1/2 operators. NetKet's
``Heisenberg`` operator is built from Pauli matrices (sigma = 2 S), so its energy is 4x the
spin-1/2 energy: ``energy_per_site(E_netket, N) = E_netket / (4 N)``.
"""

from __future__ import annotations

import dataclasses

import netket as nk
import numpy as np

from vitnqs.exchange import DEFAULT_BLOCK_SIZE, BondExchange

PAULI_TO_SPIN_HALF = 4.0
"""NetKet's Heisenberg energy / this factor = the energy with S = 1/2 operators."""


def energy_per_site(energy_netket, n_sites: int):
    """Convert a NetKet Heisenberg energy (Pauli matrices) to energy per site with S = 1/2."""
    return energy_netket / (PAULI_TO_SPIN_HALF * n_sites)


def variance_spin_half(variance_netket):
    """Convert the variance of a NetKet Heisenberg energy (Pauli matrices) to that of the energy
    with S = 1/2 operators (the whole lattice's, in units of J1^2)."""
    return variance_netket / PAULI_TO_SPIN_HALF**2


@dataclasses.dataclass(frozen=True)
class J1J2System:
    """Lattice, Hilbert space, Hamiltonian and sampler of the J1-J2 model on an L x L torus."""

    L: int
    """Linear size of the lattice."""
    J2: float
    """Next-nearest-neighbour coupling in units of J1."""
    graph: nk.graph.Lattice
    """Square lattice with nearest (colour 0) and next-nearest (colour 1) bonds, periodic."""
    hilbert: nk.hilbert.Spin
    """Spin-1/2 Hilbert space restricted to total Sz = 0."""
    hamiltonian: nk.operator.LocalOperator
    """NetKet's Heisenberg operator, J = [1, J2], no sign rule (Pauli matrices): the reference
    (exact diagonalization, and the baseline step of vitnqs.benchmark)."""

    @property
    def n_sites(self) -> int:
        return self.L * self.L

    def sampler(self, n_chains: int, d_max: int = 2) -> nk.sampler.MetropolisSampler:
        """Metropolis exchange sampler: swaps two opposite spins within graph distance d_max.

        One sweep is N proposals; acceptance min(1, |psi(s')/psi(s)|^2).
        """
        return nk.sampler.MetropolisExchange(
            self.hilbert,
            graph=self.graph,
            d_max=d_max,
            n_chains=n_chains,
            sweep_size=self.n_sites,
        )

    def energy_per_site(self, energy_netket):
        return energy_per_site(energy_netket, self.n_sites)

    def local_energy_operator(self, block_size: int = DEFAULT_BLOCK_SIZE) -> BondExchange:
        """The same Hamiltonian as ``hamiltonian``, with local energies that skip zero matrix
        elements (vitnqs.exchange); what training and every energy estimate use."""
        return BondExchange.from_graph(self.hilbert, self.graph, [1.0, self.J2], block_size)


def build_system(L: int, J2: float) -> J1J2System:
    """Build the J1-J2 Heisenberg model on an L x L torus with total Sz = 0."""
    if not isinstance(L, (int, np.integer)) or L < 2:
        raise ValueError(f"L must be an integer >= 2, got L={L!r}")
    if (L * L) % 2:
        raise ValueError(f"L={L} gives an odd number of sites N={L * L}: no total Sz = 0 sector")
    graph = nk.graph.Square(int(L), max_neighbor_order=2, pbc=True)
    hilbert = nk.hilbert.Spin(s=1 / 2, N=graph.n_nodes, total_sz=0)
    hamiltonian = nk.operator.Heisenberg(
        hilbert, graph, J=[1.0, float(J2)], sign_rule=[False, False]
    )
    return J1J2System(L=int(L), J2=float(J2), graph=graph, hilbert=hilbert, hamiltonian=hamiltonian)


def exact_ground_state(system: J1J2System) -> tuple[float, np.ndarray]:
    """Exact ground-state energy per site and ground-state vector (Lanczos on the Sz = 0 sector).

    Feasible up to N = 36 sites in principle; practical on a laptop up to L = 4 (12,870 states).
    """
    if system.hilbert.n_states > 2_000_000:
        raise ValueError(
            f"exact diagonalization of L={system.L} needs {system.hilbert.n_states} states; "
            "use a reference energy instead"
        )
    energies, vectors = nk.exact.lanczos_ed(system.hamiltonian, k=1, compute_eigenvectors=True)
    return float(system.energy_per_site(energies[0])), np.asarray(vectors[:, 0])
