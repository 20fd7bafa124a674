"""The Vision-Transformer wave function of Rende & Viteritti with three attention mechanisms.

Tensor names carry their shapes. The letters:
    B  batch of spin configurations          N  sites, L * L
    P  patches, n = L^2 / b^2                D  embedding dimension d
    H  heads h                               K  head width d / h
    F  patch features b^2                    O  output units of the complex head (= D)

The three mechanisms differ only in how the attention weights alpha_ij are built:
    t5:        alpha_ij = softmax_j( x_i Q^T K x_j / sqrt(d) + p_(i-j) )
    decoupled: alpha_ij = softmax_j( x_i Q^T K x_j / sqrt(d) ) + p_(i-j)
    factored:  alpha_ij = p_(i-j)
p_(i-j) is a learned vector of n numbers per head and layer, indexed by the 2D displacement
between patches i and j on the (L/b) x (L/b) patch torus.

Scale choice (the paper leaves it open): logits are divided by sqrt(d), as the paper writes,
not by sqrt(d/h). ``query_key_scale`` below is the only place that says so.

Attention weights are recorded with ``sow`` into the ``intermediates`` collection only when the
caller asks for it (``mutable=["intermediates"]``); training never does and pays nothing.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from netket.nn.activation import log_cosh

from vitnqs.config import MECHANISMS, POSITIONAL_INITS, check_vit_arguments

__all__ = ["MECHANISMS", "ATTENTIONS", "ViT", "count_parameters", "check_vit_arguments"]


def query_key_scale(d_model: int) -> float:
    """Divisor of the query-key logits: sqrt(d), as written in the paper."""
    return math.sqrt(d_model)


def relative_position_index(n_side: int) -> np.ndarray:
    """(P, P) integer matrix: the flattened 2D torus displacement between patches i and j.

    Patches are numbered row-major on the n_side x n_side patch torus; entry [i, j] indexes a
    vector of P = n_side^2 numbers, so ``p[index]`` is the circulant matrix p_(i-j).
    """
    row, col = np.divmod(np.arange(n_side * n_side), n_side)
    d_row = (row[:, None] - row[None, :]) % n_side
    d_col = (col[:, None] - col[None, :]) % n_side
    return d_row * n_side + d_col


def extract_patches(spins_BxN: Array, patch_size: int) -> Array:
    """Split L x L spins into b x b patches, row-major over the patch torus: (B, P, F)."""
    B, N = spins_BxN.shape
    L = math.isqrt(N)
    if L * L != N:
        raise ValueError(f"the input has N={N} sites, which is not a square lattice L x L")
    n_side = L // patch_size
    x = spins_BxN.reshape(B, n_side, patch_size, n_side, patch_size)
    x = x.transpose(0, 1, 3, 2, 4)
    return x.reshape(B, n_side * n_side, patch_size * patch_size)


def _split_heads(y_BxPxD: Array, n_heads: int) -> Array:
    B, P, D = y_BxPxD.shape
    return y_BxPxD.reshape(B, P, n_heads, D // n_heads)


def softmax_scale_uniform(key, shape, dtype=jnp.float64):
    """Uniform in [-1/P, 1/P] for p of shape (H, P): the scale of a softmax row's weights."""
    bound = 1.0 / shape[-1]
    return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)


POSITIONAL_INITIALIZERS = {
    "xavier": nn.initializers.xavier_uniform(),
    "softmax-scale": softmax_scale_uniform,
}
"""The initializer of p for each name of config.POSITIONAL_INITS."""


class _AttentionBase(nn.Module):
    """Shared parts: values V, the positional term p_(i-j), the head mixing W."""

    d_model: int
    """Embedding dimension d."""
    n_heads: int
    """Number of heads h; d must be a multiple of h."""
    param_dtype: type = jnp.float64
    """Dtype of the parameters (and of the computation)."""
    positional_init: str = "xavier"
    """Initialization of p: 'xavier' or 'softmax-scale' (config.POSITIONAL_INITS)."""

    def positional(self, n_patches: int) -> Array:
        """p_(i-j) per head: (H, P, P), translation invariant on the patch torus."""
        n_side = math.isqrt(n_patches)
        p_HxP = self.param(
            "p", POSITIONAL_INITIALIZERS[self.positional_init], (self.n_heads, n_patches),
            self.param_dtype,
        )
        return p_HxP[:, relative_position_index(n_side)]

    def query_key_logits(self, x_BxPxD: Array) -> Array:
        """x_i Q^T K x_j / sqrt(d) per head: (B, H, P, P)."""
        dense = lambda name: nn.Dense(  # noqa: E731
            self.d_model, name=name, param_dtype=self.param_dtype,
            kernel_init=nn.initializers.xavier_uniform(),
        )
        q_BxPxHxK = _split_heads(dense("Q")(x_BxPxD), self.n_heads)
        k_BxPxHxK = _split_heads(dense("K")(x_BxPxD), self.n_heads)
        return jnp.einsum("bihk,bjhk->bhij", q_BxPxHxK, k_BxPxHxK) / query_key_scale(self.d_model)

    def attend(self, alpha_xHxPxP: Array, x_BxPxD: Array) -> Array:
        """A_i = W concat_heads( sum_j alpha_ij V x_j ); alpha may lack the batch axis."""
        v_BxPxHxK = _split_heads(
            nn.Dense(self.d_model, name="V", param_dtype=self.param_dtype,
                     kernel_init=nn.initializers.xavier_uniform())(x_BxPxD),
            self.n_heads,
        )
        # A position-only alpha (H, P, P) is contracted as is, never broadcast over the batch:
        # XLA's GPU GEMM fusions reject a float64 dot whose operand is a fused broadcast.
        spec = "hij,bjhk->bihk" if alpha_xHxPxP.ndim == 3 else "bhij,bjhk->bihk"
        a_BxPxHxK = jnp.einsum(spec, alpha_xHxPxP, v_BxPxHxK)
        a_BxPxD = a_BxPxHxK.reshape(x_BxPxD.shape)
        return nn.Dense(self.d_model, name="W", param_dtype=self.param_dtype,
                        kernel_init=nn.initializers.xavier_uniform())(a_BxPxD)


class FactoredAttention(_AttentionBase):
    """Position-only attention: alpha_ij = p_(i-j), the same for every input."""

    @nn.compact
    def __call__(self, x_BxPxD: Array) -> Array:
        alpha_HxPxP = self.positional(x_BxPxD.shape[1])
        self.sow("intermediates", "attention", alpha_HxPxP)
        return self.attend(alpha_HxPxP, x_BxPxD)


class T5Attention(_AttentionBase):
    """Query-key attention with the relative position inside the softmax (T5-style bias).

    Without the query-key term (``query_key=False``, no Q or K parameters) alpha = softmax_j(p),
    the same for every input: rows still positive and summing to 1, unlike factored's p.
    """

    query_key: bool = True
    """Whether the logits hold x_i Q^T K x_j / sqrt(d) besides p_(i-j)."""

    @nn.compact
    def __call__(self, x_BxPxD: Array) -> Array:
        n_patches = x_BxPxD.shape[1]
        if self.query_key:
            logits_xHxPxP = self.query_key_logits(x_BxPxD) + self.positional(n_patches)
        else:
            logits_xHxPxP = self.positional(n_patches)
        alpha_xHxPxP = nn.softmax(logits_xHxPxP, axis=-1)
        self.sow("intermediates", "attention", alpha_xHxPxP)
        return self.attend(alpha_xHxPxP, x_BxPxD)


class DecoupledAttention(_AttentionBase):
    """Query-key softmax plus a separate positional term: softmax(x Q^T K x / sqrt d) + p."""

    @nn.compact
    def __call__(self, x_BxPxD: Array) -> Array:
        softmax_BxHxPxP = nn.softmax(self.query_key_logits(x_BxPxD), axis=-1)
        positional_HxPxP = self.positional(x_BxPxD.shape[1])
        alpha_BxHxPxP = softmax_BxHxPxP + positional_HxPxP
        self.sow("intermediates", "softmax", softmax_BxHxPxP)
        self.sow("intermediates", "positional", positional_HxPxP)
        self.sow("intermediates", "attention", alpha_BxHxPxP)
        return self.attend(alpha_BxHxPxP, x_BxPxD)


ATTENTIONS: dict[str, type[_AttentionBase]] = {
    "t5": T5Attention,
    "decoupled": DecoupledAttention,
    "factored": FactoredAttention,
}
"""The attention module of each mechanism; the only place that maps names to code."""


class EncoderBlock(nn.Module):
    """Pre-LayerNorm encoder block: x + MHA(LN x), then x + MLP(LN x), MLP = 4d, GeLU, d."""

    d_model: int
    """Embedding dimension d."""
    n_heads: int
    """Number of heads h."""
    attention: str
    """Attention mechanism: 't5', 'decoupled' or 'factored'."""
    param_dtype: type = jnp.float64
    """Dtype of the parameters."""
    positional_init: str = "xavier"
    """Initialization of the positional term p."""
    query_key: bool = True
    """t5 only: whether its softmax holds the query-key term (T5Attention)."""

    @nn.compact
    def __call__(self, x_BxPxD: Array) -> Array:
        options = {"query_key": self.query_key} if self.attention == "t5" else {}
        attention = ATTENTIONS[self.attention](
            d_model=self.d_model, n_heads=self.n_heads, param_dtype=self.param_dtype,
            positional_init=self.positional_init, name="attention", **options,
        )
        ln = lambda name: nn.LayerNorm(param_dtype=self.param_dtype, name=name)  # noqa: E731
        x_BxPxD = x_BxPxD + attention(ln("norm_attention")(x_BxPxD))
        y_BxPxD = ln("norm_mlp")(x_BxPxD)
        y_BxPxD = nn.Dense(4 * self.d_model, param_dtype=self.param_dtype, name="mlp_in")(y_BxPxD)
        y_BxPxD = nn.Dense(self.d_model, param_dtype=self.param_dtype, name="mlp_out")(
            nn.gelu(y_BxPxD)
        )
        return x_BxPxD + y_BxPxD


class ViT(nn.Module):
    """Vision-Transformer wave function: spins (B, L*L) of +-1 -> log psi (B,), complex.

    Patch embedding -> n_l encoder blocks -> z = LN(sum_i y_i) ->
    log psi = sum_beta log cosh( LN(W_r z + b_r) + i LN(W_i z + b_i) ).
    All parameters are real; the output is complex.
    """

    n_layers: int
    """Number of encoder blocks n_l."""
    d_model: int
    """Embedding dimension d."""
    n_heads: int
    """Number of attention heads h."""
    patch_size: int = 2
    """Linear patch size b: patches are b x b sites."""
    attention: str = "factored"
    """Attention mechanism: 't5', 'decoupled' or 'factored'."""
    param_dtype: type = jnp.float64
    """Dtype of the parameters and of the forward pass."""
    positional_init: str = "xavier"
    """Initialization of the positional term p: 'xavier' or 'softmax-scale'."""
    query_key: bool = True
    """t5 only: false drops Q and K, leaving alpha = softmax_j(p_(i-j)) (T5Attention)."""

    @nn.compact
    def __call__(self, spins_BxN: Array) -> Array:
        single = spins_BxN.ndim == 1
        spins_BxN = jnp.atleast_2d(spins_BxN).astype(self.param_dtype)
        N = spins_BxN.shape[-1]
        L = math.isqrt(N)
        if L * L != N:
            raise ValueError(f"the input has N={N} sites, which is not a square lattice L x L")
        check_vit_arguments(
            L, d_model=self.d_model, n_heads=self.n_heads, patch_size=self.patch_size,
            attention=self.attention, query_key=self.query_key,
        )
        if self.n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got n_layers={self.n_layers}")
        if self.positional_init not in POSITIONAL_INITS:
            raise ValueError(f"positional_init={self.positional_init!r} is not one of "
                             f"{POSITIONAL_INITS}")

        x_BxPxF = extract_patches(spins_BxN, self.patch_size)
        x_BxPxD = nn.Dense(self.d_model, param_dtype=self.param_dtype, name="embedding")(x_BxPxF)
        for layer in range(self.n_layers):
            x_BxPxD = EncoderBlock(
                d_model=self.d_model, n_heads=self.n_heads, attention=self.attention,
                param_dtype=self.param_dtype, positional_init=self.positional_init,
                query_key=self.query_key, name=f"block_{layer}",
            )(x_BxPxD)

        z_BxD = nn.LayerNorm(param_dtype=self.param_dtype, name="norm_out")(x_BxPxD.sum(axis=1))
        head = lambda part: nn.LayerNorm(  # noqa: E731
            param_dtype=self.param_dtype, name=f"norm_{part}"
        )(nn.Dense(self.d_model, param_dtype=self.param_dtype, name=f"out_{part}")(z_BxD))
        log_psi_B = jnp.sum(log_cosh(head("real") + 1j * head("imag")), axis=-1)
        return log_psi_B[0] if single else log_psi_B


def count_parameters(variables) -> int:
    """Number of real parameters in a variables or params pytree."""
    params = variables.get("params", variables) if hasattr(variables, "get") else variables
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))
