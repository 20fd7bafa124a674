"""BondExchange: the J1-J2 Hamiltonian whose local energies skip zero matrix elements.

It must be NetKet's Heisenberg operator, matrix element for matrix element, and give the same
local energies on the same samples, whatever the block and chunk sizes.
"""

import netket as nk
import numpy as np
import pytest
from conftest import random_sz0_configurations

from vitnqs import build_system, exact_ground_state
from vitnqs.config import RunConfig
from vitnqs.exchange import BondExchange, antiparallel_fraction
from vitnqs.train import build_variational_state


@pytest.mark.parametrize("J2", [0.5, 0.0])
def test_same_matrix_as_netket_heisenberg(J2):
    system = build_system(4, J2)
    fast = system.local_energy_operator()
    assert np.array_equal(np.asarray(fast.to_dense()), system.hamiltonian.to_dense())


def test_zero_couplings_are_dropped():
    assert build_system(4, 0.0).local_energy_operator().n_bonds == 2 * 16
    assert build_system(4, 0.5).local_energy_operator().n_bonds == 4 * 16


def test_neel_state_has_only_nearest_neighbour_connections():
    # Neel order: every J1 bond antiparallel, every J2 bond (same sublattice) parallel
    system = build_system(4, 0.5)
    x, y = np.divmod(np.arange(16), 4)
    neel = np.where((x + y) % 2 == 0, 1, -1).astype(np.int8)[None]
    op = system.local_energy_operator()
    assert antiparallel_fraction(neel, op) == 0.5
    xp, mels = op.get_conn_padded(neel)
    # diagonal: 32 J1 bonds at -1 each, 32 J2 bonds at +J2 each
    assert np.isclose(mels[0, 0], -32 + 0.5 * 32)
    assert np.count_nonzero(mels[0, 1:]) == 32


@pytest.mark.parametrize(("block_size", "chunk_size"), [(100_000, None), (97, None), (64, 32)])
def test_local_energies_equal_netket(block_size, chunk_size):
    """Random ViT state, its own samples: E_loc through both operators, 97 forces many blocks."""
    system = build_system(4, 0.5)
    config = RunConfig.from_dict(dict(L=4, J2=0.5, n_layers=1, attention="t5", d_model=8,
                                      n_heads=2, n_samples=128, n_chains=16))
    vstate = build_variational_state(config, system)
    vstate.chunk_size = chunk_size
    plain = np.asarray(vstate.local_estimators(system.hamiltonian).data)
    fast = np.asarray(vstate.local_estimators(system.local_energy_operator(block_size)).data)
    assert np.max(np.abs(fast - plain)) < 1e-12 * np.max(np.abs(plain))


def test_exact_ground_state_gives_constant_local_energies():
    """A zero-variance check through the fast kernel: psi = the exact ground state (4x4)."""
    import jax.numpy as jnp

    system = build_system(4, 0.5)
    energy, psi = exact_ground_state(system)
    states = system.hilbert.all_states()
    support = np.abs(psi) > 1e-6 * np.abs(psi).max()
    table = jnp.asarray(psi.astype(complex))

    def logpsi(_, x):
        return jnp.log(table[system.hilbert.states_to_numbers(x)])

    from vitnqs.exchange import local_energy_kernel

    samples = jnp.asarray(states[support][:500])
    e_loc = local_energy_kernel(logpsi, None, samples, system.local_energy_operator(257))
    assert np.max(np.abs(np.asarray(e_loc) / (4 * 16) - energy)) < 1e-9


@pytest.mark.parametrize("J2", [0.5, 0.0])
def test_the_network_sees_only_antiparallel_bonds(J2):
    """What makes the kernel fast, counted: with blocks of one configuration, log psi runs once on
    the samples and then exactly once per (sample, bond) pair whose spins differ, on a bond with a
    nonzero coupling (64 bonds at J2 = 0.5, the 32 nearest neighbours at J2 = 0), counted here
    from the graph's edges; a parallel bond or a zero coupling costs no network pass."""
    import jax
    import jax.numpy as jnp

    from vitnqs.exchange import local_energy_kernel

    system = build_system(4, J2)
    samples = random_sz0_configurations(16, 6, seed=3)
    edges = [(i, j) for i, j, colour in system.graph.edges(return_color=True)
             if colour == 0 or J2 != 0]
    expected = sum(int(s[i] != s[j]) for s in samples for i, j in edges)
    batches = []

    def logpsi(_, x):
        jax.debug.callback(lambda n: batches.append(int(n)), x.shape[0])
        return jnp.sum(0.1 * x, axis=-1)

    e_loc = local_energy_kernel(logpsi, None, jnp.asarray(samples),
                                system.local_energy_operator(1))
    jax.block_until_ready(e_loc)
    assert batches[0] == len(samples)
    assert batches[1:] == [1] * expected
    assert 0 < expected < len(samples) * len(edges)


def test_netket_expect_gives_the_same_energy_with_either_operator():
    """vstate.expect (what VMC_SR's energy goes through) with NetKet's Heisenberg operator and
    with BondExchange, on the same samples of an RBM state."""
    system = build_system(4, 0.5)
    vstate = nk.vqs.MCState(system.sampler(16), nk.models.RBM(param_dtype=complex),
                            n_samples=256, seed=0, sampler_seed=1)
    a = vstate.expect(system.hamiltonian)
    b = vstate.expect(system.local_energy_operator(100))
    assert abs(complex(a.mean) - complex(b.mean)) < 1e-10


def test_spin_one_hilbert_space_is_refused():
    hilbert = nk.hilbert.Spin(1.0, N=4)
    with pytest.raises(ValueError, match="spin-1/2"):
        BondExchange(hilbert, [(0, 1)], [1.0])


def test_random_configurations_connect_like_netket():
    system = build_system(4, 0.5)
    configs = random_sz0_configurations(16, 20).astype(np.int8)
    xp_fast, m_fast = map(np.asarray, system.local_energy_operator().get_conn_padded(configs))
    xp_nk, m_nk = map(np.asarray, system.hamiltonian.get_conn_padded(configs))

    def nonzero(xp, mels):
        return {(x.tobytes(), round(float(m), 12)) for x, m in zip(xp, mels) if m != 0}

    for k in range(len(configs)):  # the same (configuration, element) pairs, per sample
        assert nonzero(xp_fast[k], m_fast[k]) == nonzero(xp_nk[k], m_nk[k])
