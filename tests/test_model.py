"""The ViT wave function: the paper's parameter counts, symmetries, attention weights."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_sz0_configurations, small_vit
from flax.traverse_util import flatten_dict

from vitnqs import ViT, count_parameters
from vitnqs.config import ConfigError
from vitnqs.model import extract_patches, relative_position_index

PAPER_PARAMETER_COUNTS = {  # shared/paper.md, "ViT wave function", item 5
    (6, "factored"): 154_980, (6, "t5"): 184_260, (6, "decoupled"): 184_260,
    (8, "factored"): 155_260, (8, "t5"): 184_540, (8, "decoupled"): 184_540,
    (10, "factored"): 155_620, (10, "t5"): 184_900, (10, "decoupled"): 184_900,
}


@pytest.mark.parametrize(("L", "attention"), sorted(PAPER_PARAMETER_COUNTS))
def test_parameter_count_matches_paper(L, attention):
    model = ViT(n_layers=4, d_model=60, n_heads=10, patch_size=2, attention=attention)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.ones((1, L * L)))
    assert count_parameters(shapes) == PAPER_PARAMETER_COUNTS[(L, attention)]


def _translate(spins_BxN, L, shift_row, shift_col):
    grid = spins_BxN.reshape(-1, L, L)
    return np.roll(grid, (shift_row, shift_col), axis=(1, 2)).reshape(-1, L * L)


@pytest.mark.parametrize("use_jit", [False, True])
def test_log_psi_is_invariant_under_patch_translations(mechanism, use_jit):
    L = 6
    model = small_vit(mechanism)
    spins = random_sz0_configurations(L * L, 5, seed=1)
    variables = model.init(jax.random.PRNGKey(3), spins)
    apply = jax.jit(model.apply) if use_jit else model.apply
    log_psi = apply(variables, spins)
    assert log_psi.dtype == jnp.complex128
    assert np.all(np.isfinite(log_psi))
    for shift in [(2, 0), (0, 2), (4, 2)]:
        shifted = apply(variables, _translate(spins, L, *shift))
        np.testing.assert_allclose(shifted, log_psi, rtol=1e-10, atol=1e-10)
    # a translation by one site is not a symmetry of the patch decomposition
    assert not np.allclose(apply(variables, _translate(spins, L, 1, 0)), log_psi)


def _attention_weights(model, variables, spins):
    _, state = model.apply(variables, spins, mutable=["intermediates"])
    return state["intermediates"]


def test_attention_is_recorded_only_on_request(mechanism):
    model = small_vit(mechanism, n_layers=1)
    spins = random_sz0_configurations(16, 3)
    variables = model.init(jax.random.PRNGKey(0), spins)
    assert "intermediates" not in variables
    plain = model.apply(variables, spins)
    recorded, state = model.apply(variables, spins, mutable=["intermediates"])
    np.testing.assert_array_equal(plain, recorded)
    keys = set(state["intermediates"]["block_0"]["attention"])
    expected = {"attention", "softmax", "positional"} if mechanism == "decoupled" else {"attention"}
    assert keys == expected


def test_factored_weights_do_not_depend_on_the_input():
    model = small_vit("factored")
    variables = model.init(jax.random.PRNGKey(0), jnp.ones((1, 16)))
    a = _attention_weights(model, variables, random_sz0_configurations(16, 4, seed=1))
    b = _attention_weights(model, variables, random_sz0_configurations(16, 4, seed=2))
    for layer in ("block_0", "block_1"):
        (alpha_a,), (alpha_b,) = (a[layer]["attention"]["attention"],
                                  b[layer]["attention"]["attention"])
        assert alpha_a.shape == (2, 4, 4)
        np.testing.assert_array_equal(alpha_a, alpha_b)


@pytest.mark.parametrize("attention", ["t5", "decoupled"])
def test_query_key_weights_depend_on_the_input_at_initialization(attention):
    model = small_vit(attention)
    spins = random_sz0_configurations(36, 6, seed=4)
    variables = model.init(jax.random.PRNGKey(1), spins)
    (alpha_BxHxPxP,) = _attention_weights(
        model, variables, spins
    )["block_0"]["attention"]["attention"]
    spread = np.std(np.asarray(alpha_BxHxPxP), axis=0)
    assert spread.mean() > 1e-3


def test_t5_rows_sum_to_one():
    model = small_vit("t5")
    spins = random_sz0_configurations(36, 3)
    variables = model.init(jax.random.PRNGKey(2), spins)
    (alpha,) = _attention_weights(model, variables, spins)["block_1"]["attention"]["attention"]
    np.testing.assert_allclose(np.asarray(alpha).sum(axis=-1), 1.0, rtol=1e-12)


def test_decoupled_without_queries_and_keys_is_factored_shifted_by_one_over_n():
    decoupled, factored = small_vit("decoupled", n_layers=1), small_vit("factored", n_layers=1)
    spins = random_sz0_configurations(36, 3)
    variables = decoupled.init(jax.random.PRNGKey(5), spins)
    params = jax.tree_util.tree_map(lambda x: x, variables["params"])
    for name in ("Q", "K"):
        params["block_0"]["attention"][name] = jax.tree_util.tree_map(
            jnp.zeros_like, params["block_0"]["attention"][name]
        )
    (alpha_dec,) = _attention_weights(
        decoupled, {"params": params}, spins
    )["block_0"]["attention"]["attention"]
    factored_params = jax.tree_util.tree_map(lambda x: x, params)
    for name in ("Q", "K"):
        del factored_params["block_0"]["attention"][name]
    (alpha_fac,) = _attention_weights(
        factored, {"params": factored_params}, spins
    )["block_0"]["attention"]["attention"]
    n_patches = 9
    expected = np.broadcast_to(alpha_fac + 1 / n_patches, alpha_dec.shape)
    np.testing.assert_allclose(alpha_dec, expected, rtol=1e-12, atol=1e-14)


# --- the attention weights, recomputed in numpy from the layer's parameters -------------------
def _random_parameters(params, seed: int):
    """Every parameter (kernels, biases, LayerNorm scales, p) replaced by a N(0, 1) draw, so that
    no term of the formula hides behind a zero bias or a unit scale."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_unflatten(
        treedef, [jnp.asarray(rng.normal(size=np.shape(leaf))) for leaf in leaves])


def _numpy_layer_input(params, spins_BxN: np.ndarray, b: int) -> np.ndarray:
    """x_i = LayerNorm(embedding(patch i)): b x b patches row-major over the patch torus."""
    B, N = spins_BxN.shape
    L = math.isqrt(N)
    grid = spins_BxN.reshape(B, L, L)
    patches_BxPxF = np.stack([grid[:, r * b:(r + 1) * b, c * b:(c + 1) * b].reshape(B, b * b)
                              for r in range(L // b) for c in range(L // b)], axis=1)
    embed, norm = params["embedding"], params["block_0"]["norm_attention"]
    y = patches_BxPxF @ np.asarray(embed["kernel"]) + np.asarray(embed["bias"])
    y = (y - y.mean(-1, keepdims=True)) / np.sqrt(y.var(-1, keepdims=True) + 1e-6)  # flax eps
    return y * np.asarray(norm["scale"]) + np.asarray(norm["bias"])


def _numpy_positional(p_HxP: np.ndarray) -> np.ndarray:
    """p_(i-j) per head, (H, P, P): entry [h, i, j] is p[h] at the 2D displacement
    (row_i - row_j, col_i - col_j) mod n_side on the patch torus, flattened row-major."""
    H, P = p_HxP.shape
    n_side = math.isqrt(P)
    out = np.empty((H, P, P))
    for i in range(P):
        for j in range(P):
            d_row = (i // n_side - j // n_side) % n_side
            d_col = (i % n_side - j % n_side) % n_side
            out[:, i, j] = p_HxP[:, d_row * n_side + d_col]
    return out


def _softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=axis, keepdims=True)


def _numpy_attention(mechanism: str, layer, x_BxPxD: np.ndarray, n_heads: int):
    """(alpha (B, H, P, P), A (B, P, D)) of one layer from its parameters, per paper.md item 3:
        s_ij = q_i . k_j / sqrt(d)   per head, q = Q x + b_Q, k = K x + b_K (head width d / h)
        t5: softmax_j(s_ij + p_(i-j));  decoupled: softmax_j(s_ij) + p_(i-j);  factored: p_(i-j)
        A_i = W concat_heads(sum_j alpha_ij V x_j) + b_W."""
    B, P, D = x_BxPxD.shape

    def dense(name, x):
        return x @ np.asarray(layer[name]["kernel"]) + np.asarray(layer[name]["bias"])

    def heads(y):
        return y.reshape(B, P, n_heads, D // n_heads)

    p_HxPxP = _numpy_positional(np.asarray(layer["p"]))
    if mechanism == "factored":
        alpha = np.broadcast_to(p_HxPxP, (B, n_heads, P, P))
    else:
        q, k = heads(dense("Q", x_BxPxD)), heads(dense("K", x_BxPxD))
        scores = np.einsum("bihk,bjhk->bhij", q, k) / np.sqrt(D)  # the paper's sqrt(d)
        alpha = (_softmax(scores + p_HxPxP) if mechanism == "t5"
                 else _softmax(scores) + p_HxPxP)
    mixed = np.einsum("bhij,bjhk->bihk", alpha, heads(dense("V", x_BxPxD))).reshape(B, P, D)
    return alpha, dense("W", mixed)


def _recorded_attention(model, variables, spins):
    """The model's own alpha (sown) and attention-layer output (captured) of block 0."""
    _, state = model.apply(variables, jnp.asarray(spins), capture_intermediates=True,
                           mutable=["intermediates"])
    recorded = state["intermediates"]["block_0"]["attention"]
    (alpha,), (output,) = recorded["attention"], recorded["__call__"]
    return np.asarray(alpha), np.asarray(output)


def test_attention_weights_and_output_match_the_paper_formula_in_numpy(mechanism):
    """alpha_ij and A_i of a layer with random (non-zero) parameters, recomputed in numpy from
    those parameters on a 6 x 6 lattice (3 x 3 patch torus, so p_(i-j) != p_(j-i)), d = 8,
    h = 2 (so the paper's scale sqrt(d) differs from sqrt(d/h)): agree to 1e-12 per head."""
    L, b, d, h = 6, 2, 8, 2
    model = ViT(n_layers=1, d_model=d, n_heads=h, patch_size=b, attention=mechanism)
    spins = random_sz0_configurations(L * L, 4, seed=7)
    params = _random_parameters(model.init(jax.random.PRNGKey(0), spins)["params"], seed=11)
    alpha, output = _recorded_attention(model, {"params": params}, spins)

    x_BxPxD = _numpy_layer_input(params, spins, b)
    expected_alpha, expected_output = _numpy_attention(
        mechanism, params["block_0"]["attention"], x_BxPxD, h)
    np.testing.assert_allclose(np.broadcast_to(alpha, expected_alpha.shape), expected_alpha,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(output, expected_output, rtol=1e-12, atol=1e-12)
    if mechanism != "factored":  # the weights are input dependent and O(1) logits matter
        assert np.std(expected_alpha, axis=0).mean() > 1e-2


def test_t5_without_query_key_weights_is_the_softmax_of_the_positional_term():
    """T5 with zero Q and K kernels: q_i . k_j = b_Q . b_K is the same for every j and drops out
    of the softmax, so alpha_ij = softmax_j(p_(i-j)) for every input, rows summing to one."""
    model = ViT(n_layers=1, d_model=8, n_heads=2, patch_size=2, attention="t5")
    spins = random_sz0_configurations(36, 4, seed=8)
    params = _random_parameters(model.init(jax.random.PRNGKey(0), spins)["params"], seed=12)
    for name in ("Q", "K"):
        params["block_0"]["attention"][name]["kernel"] = jnp.zeros((8, 8))
    alpha, _ = _recorded_attention(model, {"params": params}, spins)
    expected = _softmax(_numpy_positional(np.asarray(params["block_0"]["attention"]["p"])))
    np.testing.assert_allclose(alpha, np.broadcast_to(expected, alpha.shape),
                               rtol=1e-12, atol=1e-14)


def test_t5_without_its_query_key_term_is_t5_with_zero_query_key_kernels():
    """query_key=False drops Q and K: the same seed gives t5's other parameters unchanged (the
    probe shares t5's start), the paper-size count is factored's 154,980 (p, V, W and the MLP are
    the same in both), and the wave function is t5's with zero Q and K kernels."""
    spins = random_sz0_configurations(36, 4, seed=9)
    fields = {"n_layers": 2, "d_model": 8, "n_heads": 2, "patch_size": 2, "attention": "t5"}
    with_qk = ViT(**fields).init(jax.random.PRNGKey(5), spins)["params"]
    without = ViT(**fields, query_key=False).init(jax.random.PRNGKey(5), spins)["params"]
    flat_with, flat_without = (flatten_dict(p) for p in (with_qk, without))
    assert set(flat_with) - set(flat_without) == {
        (f"block_{layer}", "attention", name, kind)
        for layer in (0, 1) for name in ("Q", "K") for kind in ("kernel", "bias")}
    for key, value in flat_without.items():
        np.testing.assert_array_equal(value, flat_with[key])

    zeroed = jax.tree_util.tree_map(np.asarray, with_qk)
    for layer in (0, 1):
        for name in ("Q", "K"):
            zeroed[f"block_{layer}"]["attention"][name]["kernel"] = np.zeros((8, 8))
    np.testing.assert_allclose(ViT(**fields, query_key=False).apply({"params": without}, spins),
                               ViT(**fields).apply({"params": zeroed}, spins),
                               rtol=1e-12, atol=1e-12)

    paper = ViT(n_layers=4, d_model=60, n_heads=10, patch_size=2, attention="t5", query_key=False)
    shapes = jax.eval_shape(paper.init, jax.random.PRNGKey(0), jnp.ones((1, 36)))
    assert count_parameters(shapes) == PAPER_PARAMETER_COUNTS[(6, "factored")]


@pytest.mark.parametrize("attention", ["decoupled", "factored"])
def test_only_t5_can_drop_its_query_key_term(attention):
    model = ViT(n_layers=1, d_model=8, n_heads=2, patch_size=2, attention=attention,
                query_key=False)
    with pytest.raises(ConfigError, match="query_key=false applies to attention='t5' only"):
        model.init(jax.random.PRNGKey(0), jnp.ones((1, 16)))


def test_relative_position_index_is_a_torus_displacement():
    index = relative_position_index(3)
    assert index.shape == (9, 9)
    assert np.all(np.diag(index) == 0)
    # a displacement and its opposite on a 3 x 3 torus: (1, 0) <-> (2, 0)
    assert index[3, 0] == 3 and index[0, 3] == 6


def test_patches_are_row_major_blocks():
    spins = np.arange(16.0)[None]
    patches = extract_patches(jnp.asarray(spins), 2)
    np.testing.assert_array_equal(patches[0, 0], [0, 1, 4, 5])
    np.testing.assert_array_equal(patches[0, 1], [2, 3, 6, 7])
    np.testing.assert_array_equal(patches[0, 2], [8, 9, 12, 13])


@pytest.mark.parametrize(
    ("kwargs", "L", "name"),
    [
        ({"patch_size": 4}, 6, "patch_size"),
        ({"n_heads": 7}, 4, "n_heads"),
        ({"attention": "softmax"}, 4, "attention"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, L, name):
    model = ViT(**{"n_layers": 1, "d_model": 8, "n_heads": 2, "patch_size": 2, **kwargs})
    with pytest.raises(ConfigError, match=name):
        model.init(jax.random.PRNGKey(0), jnp.ones((1, L * L)))


def test_odd_number_of_sites_is_refused():
    model = ViT(n_layers=1, d_model=8, n_heads=2, patch_size=1)
    with pytest.raises(ConfigError, match="odd number of sites"):
        model.init(jax.random.PRNGKey(0), jnp.ones((1, 9)))
