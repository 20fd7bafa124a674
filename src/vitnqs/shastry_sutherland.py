"""The Shastry-Sutherland dimer state written exactly as one factored-attention layer (Sec. 4.3).

Construction (paper Fig. 5), on an L x L torus cut into 2 x 2 patches numbered row-major; patch
sites 1 = (0,0), 2 = (0,1), 3 = (1,0), 4 = (1,1) are the patch features 0..3 of
``model.extract_patches``:
    identity embedding       x_i = (s_i1, s_i2, s_i3, s_i4), d = b^2 = 4
    head 1 (channels 0, 1)   alpha_ij = delta_ij:       p[0] = 1 (displacement 0)
    head 2 (channels 2, 3)   alpha_ij = delta_(j, S(i)): p[P - 1] = 1, displacement i - j = (-1, -1)
    values V                 (s_4, 3 s_2 + s_3 | s_1, 0)
    mixing W                 A_i = (pi/4 s_i4 + 3pi/4 s_S(i)1, pi/4 (3 s_i2 + s_i3), 0, 0)
    output                   log psi = sum_i sum_(c = 0, 1) log cos(A_ic + pi/2)
so S(i) is the patch one row down and one column right of i, and site 4 of patch i, at
(2R+1, 2C+1), pairs with site 1 of S(i), at (2R+2, 2C+2): a diagonal bond. Each factor
cos(pi/2 + pi/4 (s_a + 3 s_b)) is 0 for parallel spins and +-1 for antiparallel ones, so psi is a
product of singlets on the bonds (2, 3) of every patch and (4 of i, 1 of S(i)).

The output sums the two channels that carry the dimer factors: the two zero channels would add
log cos(pi/2), a constant (log 6e-17 in floating point), that is, only a global factor. In
floating point a vanishing factor is ~1e-16, not 0, so log psi stays finite (complex: log cos
of a negative cosine has imaginary part pi).

Hamiltonian: H = J sum_<ij> S_i.S_j + J' sum_dimers S_i.S_j, spin 1/2; in the dimer phase
(J/J' below ~0.68) its ground state is the dimer product with energy -3/8 J' per site.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
from jax import Array

from vitnqs.model import FactoredAttention, extract_patches
from vitnqs.system import PAULI_TO_SPIN_HALF

PATCH = 2
"""Patch size b."""
D_MODEL = PATCH * PATCH
"""Identity embedding: d = b^2."""
N_HEADS = 2
"""Head 1 within the patch, head 2 to the diagonal neighbour patch."""


class DimerNetwork(nn.Module):
    """Identity embedding -> two-head factored attention -> sum log cos(A + pi/2)."""

    @nn.compact
    def __call__(self, spins_BxN: Array) -> Array:
        x_BxPxF = extract_patches(jnp.atleast_2d(spins_BxN).astype(jnp.float64), PATCH)
        a_BxPxD = FactoredAttention(d_model=D_MODEL, n_heads=N_HEADS, name="attention")(x_BxPxF)
        factors = jnp.cos(a_BxPxD[..., :2] + jnp.pi / 2).astype(jnp.complex128)
        return jnp.sum(jnp.log(factors), axis=(-2, -1))


def dimer_variables(L: int) -> dict:
    """The parameters of Sec. 4.3 for an L x L lattice, L even and >= 4."""
    n_patches = (L // PATCH) ** 2
    p_HxP = np.zeros((N_HEADS, n_patches))
    p_HxP[0, 0] = 1.0                # displacement (0, 0): alpha_ij = delta_ij
    p_HxP[1, n_patches - 1] = 1.0    # displacement (-1, -1): alpha_ij = delta_(j, i + (1, 1))
    v = np.zeros((D_MODEL, D_MODEL))  # kernel[in, out]; in = patch sites 1..4 -> 0..3
    v[3, 0] = 1.0                     # head 1: s_4
    v[1, 1], v[2, 1] = 3.0, 1.0       # head 1: 3 s_2 + s_3
    v[0, 2] = 1.0                     # head 2: s_1 (of the attended patch S(i))
    w = np.zeros((D_MODEL, D_MODEL))
    w[0, 0], w[2, 0] = np.pi / 4, 3 * np.pi / 4
    w[1, 1] = np.pi / 4
    zeros = np.zeros(D_MODEL)
    return {"params": {"attention": {
        "p": jnp.asarray(p_HxP),
        "V": {"kernel": jnp.asarray(v), "bias": jnp.asarray(zeros)},
        "W": {"kernel": jnp.asarray(w), "bias": jnp.asarray(zeros)},
    }}}


def dimer_attention(L: int) -> np.ndarray:
    """The network's attention weights alpha, (H, P, P), as it records them."""
    spins = jnp.ones((1, L * L))
    _, sown = DimerNetwork().apply(dimer_variables(L), spins, mutable=["intermediates"])
    return np.asarray(sown["intermediates"]["attention"]["attention"][0])


def site(L: int, patch: int, k: int) -> int:
    """Lattice site (row-major) of patch site k (0..3 for the paper's 1..4) of a patch."""
    n_side = L // PATCH
    R, C = divmod(patch, n_side)
    r, c = divmod(k, PATCH)
    return (PATCH * R + r) * L + PATCH * C + c


def dimer_bonds(L: int) -> np.ndarray:
    """(N/2, 2) singlet bonds read off the network: (2, 3) of each patch, (4 of i, 1 of S(i)).

    S(i) is where head 2 of the network attends (alpha_HxPxP[1, i] is one-hot), not assumed.
    """
    alpha_HxPxP = dimer_attention(L)
    n_patches = alpha_HxPxP.shape[-1]
    if not (np.array_equal(alpha_HxPxP[0], np.eye(n_patches))
            and np.array_equal(np.sort(alpha_HxPxP[1], axis=1)[:, -1], np.ones(n_patches))
            and np.count_nonzero(alpha_HxPxP[1]) == n_patches):
        raise AssertionError("head 1 must be the identity and head 2 a one-hot map i -> S(i)")
    S = alpha_HxPxP[1].argmax(axis=1)
    bonds = [(site(L, i, 1), site(L, i, 2)) for i in range(n_patches)]
    bonds += [(site(L, i, 3), site(L, int(S[i]), 0)) for i in range(n_patches)]
    return np.array(bonds)


def square_bonds(L: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest- and next-nearest-neighbour bonds of the L x L torus, row-major sites, (n, 2)."""
    def bonds(steps):
        out = set()
        for row in range(L):
            for col in range(L):
                for dr, dc in steps:
                    a, b = row * L + col, ((row + dr) % L) * L + (col + dc) % L
                    out.add((min(a, b), max(a, b)))
        return np.array(sorted(out))

    return bonds([(0, 1), (1, 0)]), bonds([(1, 1), (1, -1)])


def pattern_checks(L: int, bonds: np.ndarray) -> dict[str, bool]:
    """Is this set of bonds the Shastry-Sutherland dimer pattern on the L x L torus?

    covers_every_site_once: a perfect matching of the sites.
    next_nearest_neighbour: every dimer is a diagonal bond of the square lattice.
    orthogonal_triangles: every nearest-neighbour bond (a, b) between two dimers has a partner
        (a, partner(b)) or (partner(a), b), so it joins one site to both ends of a dimer: the
        geometry that makes the dimer product an eigenstate.
    """
    nn_bonds, nnn_bonds = square_bonds(L)
    nn_set = {tuple(b) for b in nn_bonds}
    partner = np.full(L * L, -1)
    for a, b in bonds:
        partner[a], partner[b] = b, a
    covers = sorted(np.ravel(bonds).tolist()) == list(range(L * L))
    diagonal = {tuple(sorted(map(int, b))) for b in bonds} <= {tuple(b) for b in nnn_bonds}
    near = lambda a, b: (min(a, b), max(a, b)) in nn_set  # noqa: E731
    triangles = covers and all(
        near(a, partner[b]) or near(partner[a], b) for a, b in nn_bonds
    )
    return {"covers_every_site_once": bool(covers), "next_nearest_neighbour": bool(diagonal),
            "orthogonal_triangles": bool(triangles)}


def shastry_sutherland_hamiltonian(L: int, J: float, J_dimer: float, bonds: np.ndarray):
    """(hilbert, NetKet Heisenberg): J on nearest neighbours, J' on the dimer bonds, Sz = 0.

    NetKet uses Pauli matrices: divide its energies by PAULI_TO_SPIN_HALF = 4 for spin 1/2.
    """
    nn_bonds, _ = square_bonds(L)
    edges = [(int(a), int(b), 0) for a, b in nn_bonds] + [(int(a), int(b), 1) for a, b in bonds]
    graph = nk.graph.Graph(edges=edges, n_nodes=L * L)
    hilbert = nk.hilbert.Spin(s=1 / 2, N=L * L, total_sz=0)
    return hilbert, nk.operator.Heisenberg(hilbert, graph, J=[J, J_dimer], sign_rule=[False, False])


def dimer_amplitudes(spins_BxN: np.ndarray, bonds: np.ndarray) -> np.ndarray:
    """Product of singlets: prod over bonds (a, b) of (s_a - s_b) / 2, in {0, +-1}."""
    spins = np.asarray(spins_BxN, dtype=np.float64)
    return np.prod((spins[:, bonds[:, 0]] - spins[:, bonds[:, 1]]) / 2, axis=1)


def proportionality(psi_B: np.ndarray, reference_B: np.ndarray) -> tuple[complex, float]:
    """Best c in psi = c * reference (least squares) and ||psi - c ref|| / ||psi||."""
    c = np.vdot(reference_B, psi_B) / np.vdot(reference_B, reference_B)
    return complex(c), float(np.linalg.norm(psi_B - c * reference_B) / np.linalg.norm(psi_B))


def _amplitudes(L: int, spins_BxN: np.ndarray) -> np.ndarray:
    log_psi = jax.jit(DimerNetwork().apply)(dimer_variables(L), jnp.asarray(spins_BxN))
    return np.exp(np.asarray(log_psi))


def check_full_sector(L: int = 4, J: float = 0.5, J_dimer: float = 1.0) -> dict:
    """Amplitudes over the whole Sz = 0 sector vs the dimer product, exact energy, and ED."""
    bonds = dimer_bonds(L)
    hilbert, hamiltonian = shastry_sutherland_hamiltonian(L, J, J_dimer, bonds)
    states = np.asarray(hilbert.all_states(), dtype=np.float64)
    psi = _amplitudes(L, states)
    c, error = proportionality(psi, dimer_amplitudes(states, bonds))
    energy = np.vdot(psi, hamiltonian.to_sparse() @ psi).real / np.vdot(psi, psi).real
    ground = nk.exact.lanczos_ed(hamiltonian, k=1)[0]
    n_sites = L * L
    return {
        "L": L, "J": J, "J_dimer": J_dimer, "n_states": int(hilbert.n_states),
        **pattern_checks(L, bonds),
        "proportionality_error": error, "global_factor_abs": abs(c),
        "energy_per_site": float(energy / (PAULI_TO_SPIN_HALF * n_sites)),
        "ground_state_energy_per_site": float(ground / (PAULI_TO_SPIN_HALF * n_sites)),
        "expected_energy_per_site": -3 / 8 * J_dimer,
    }


def dimer_samples(L: int, n_samples: int, seed: int) -> np.ndarray:
    """(B, N) exact samples of |dimer product|^2: each singlet up-down or down-up, 1/2 each."""
    bonds = dimer_bonds(L)
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_samples, len(bonds)))
    spins = np.zeros((n_samples, L * L))
    spins[:, bonds[:, 0]], spins[:, bonds[:, 1]] = signs, -signs
    return spins


def check_on_samples(L: int = 6, J: float = 0.5, J_dimer: float = 1.0,
                     n_samples: int = 1000, seed: int = 0) -> dict:
    """Where L^2 is too large to enumerate: amplitude ratios and local energies on samples.

    On exact samples of the dimer product, psi / psi_dimer must be one constant and the local
    energy sum_s' H_ss' psi(s') / psi(s) must be -3/8 J' N on every sample (zero variance: an
    eigenstate). On random Sz = 0 configurations (a broken dimer, almost surely) psi must vanish
    relative to that constant.
    """
    bonds = dimer_bonds(L)
    hilbert, hamiltonian = shastry_sutherland_hamiltonian(L, J, J_dimer, bonds)
    samples = dimer_samples(L, n_samples, seed)
    psi = _amplitudes(L, samples)
    ratio = psi / dimer_amplitudes(samples, bonds)
    c = ratio[0]
    connected, elements = hamiltonian.get_conn_padded(samples.astype(np.int8))
    psi_connected = _amplitudes(L, connected.reshape(-1, L * L).astype(np.float64))
    psi_connected = psi_connected.reshape(connected.shape[:2])
    e_loc = (elements * psi_connected).sum(axis=1) / psi / (PAULI_TO_SPIN_HALF * L * L)
    random = np.asarray(hilbert.random_state(jax.random.PRNGKey(seed), n_samples), dtype=np.float64)
    broken = dimer_amplitudes(random, bonds) == 0
    return {
        "L": L, "J": J, "J_dimer": J_dimer, "n_samples": n_samples, "seed": seed,
        **pattern_checks(L, bonds),
        "ratio_spread": float(np.max(np.abs(ratio - c)) / abs(c)),
        "energy_per_site": float(np.mean(e_loc.real)),
        "energy_max_deviation": float(np.max(np.abs(e_loc - (-3 / 8 * J_dimer)))),
        "expected_energy_per_site": -3 / 8 * J_dimer,
        "n_random_broken": int(broken.sum()),
        "random_broken_max_amplitude": float(
            np.max(np.abs(_amplitudes(L, random[broken]))) / abs(c)
        ),
    }


def check(L_full: int = 4, L_sampled: int = 6, J: float = 0.5, J_dimer: float = 1.0,
          n_samples: int = 1000, seed: int = 0) -> dict:
    """Both checks, for the workflow: {'full_sector': ..., 'sampled': ...}."""
    return {"full_sector": check_full_sector(L_full, J, J_dimer),
            "sampled": check_on_samples(L_sampled, J, J_dimer, n_samples, seed)}
