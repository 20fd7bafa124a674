"""How far the positional term p_(i-j) can amplify what attention averages.

In decoupled (alpha = softmax + p) and factored (alpha = p) attention, p enters unnormalized: a
row of softmax weights sums to 1, a row of p to anything. The gain of a head,

    gain = sum_j |p_(i-j)|,

bounds |sum_j p_(i-j) v_j| by gain * max_j |v_j|. p depends on i - j on the patch torus only, so
every row i holds the same P numbers, permuted, and the gain is the same for every i. In t5, p is
a logit inside the softmax: its gain bounds nothing, and t5 is left out.

Read from the parameter snapshots of finished runs; nothing is sampled. One row per run and
layer: the largest gain over the heads at the first snapshot (step 0, the random initialization)
and at the end, beside the run's relative error, so a table says whether the runs that failed
are the ones whose p grew.

Whether the size of p still matters to the wave function: ``scale_sensitivity`` scales every p of
the final network by 1.1 and measures how much log|psi| changes over fixed random Sz = 0
configurations, relative to how much log|psi| varies over them. The encoder's LayerNorms remove
the scale of whatever dominates the residual stream: once p's term does, its size is a flat
direction of log psi, along which an SR step is held back by the diagonal shift alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vitnqs import io
from vitnqs.analysis import fixed_inputs
from vitnqs.trained import available_snapshots, load_run, read_run_config

MECHANISMS = ("decoupled", "factored")
"""The mechanisms whose positional term enters unnormalized."""
SCALE_FACTOR = 1.1
"""The factor every p is multiplied by in ``scale_sensitivity``."""
N_PROBES = 200
"""Fixed random Sz = 0 configurations (``analysis.fixed_inputs``) of ``scale_sensitivity``."""


def positional_gain(params) -> np.ndarray:
    """sum_j |p_(i-j)| per encoder block and head, (n_layers, H), of a ViT's parameters."""
    blocks = sorted((k for k in params if k.startswith("block_")), key=lambda k: int(k[6:]))
    if not blocks:
        raise ValueError("no encoder blocks ('block_0', ...) in the parameters")
    return np.stack([np.abs(np.asarray(params[b]["attention"]["p"])).sum(axis=-1) for b in blocks])


def scale_sensitivity(model, variables, spins_BxN) -> float:
    """std_s of the change of log|psi(s)| when every p is scaled by SCALE_FACTOR, over std_s of
    log|psi(s)|; the mean change is removed (a constant is the normalization). Near 0: the size
    of p no longer matters."""
    import jax

    def scaled(path, leaf):
        return leaf * SCALE_FACTOR if getattr(path[-1], "key", None) == "p" else leaf

    log_amplitude = jax.jit(lambda v: model.apply(v, spins_BxN).real)
    base = np.asarray(log_amplitude(variables))
    change = np.asarray(log_amplitude(jax.tree_util.tree_map_with_path(scaled, variables))) - base
    return float(np.std(change - change.mean()) / np.std(base))


def _gain_at(run_dir: Path, step: int) -> np.ndarray:
    params = io.read_parameters(run_dir / "snapshots" / f"step_{step:06d}.msgpack")
    return positional_gain(params.get("params", params))


def gain_rows(run_dir: Path | str) -> list[dict]:
    """Rows (run, layer, gain at the first and at the last snapshot) of one finished run."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if config.attention not in MECHANISMS:
        raise ValueError(f"{config.run_id}: the gain of p is defined for {MECHANISMS}, "
                         f"not for {config.attention!r} (p is a logit there)")
    steps = available_snapshots(run_dir)
    if len(steps) < 2:
        raise FileNotFoundError(f"{run_dir}: needs two parameter snapshots, found steps {steps}")
    first, last = _gain_at(run_dir, steps[0]), _gain_at(run_dir, steps[-1])
    summary = io.read_json(run_dir / "summary.json")
    final = load_run(run_dir, step=steps[-1])
    sensitivity = scale_sensitivity(final.model, final.variables,
                                    fixed_inputs(config.L, N_PROBES))
    return [
        {"run_id": config.run_id, "attention": config.attention, "L": config.L,
         "J2": config.J2, "n_layers": config.n_layers, "protocol": config.protocol,
         "seed": config.seed, "layer": layer, "step_init": steps[0], "step_end": steps[-1],
         "gain_init": float(first[layer].max()), "gain_end": float(last[layer].max()),
         "scale_sensitivity_end": sensitivity, "relative_error": summary.get("relative_error")}
        for layer in range(config.n_layers)
    ]


def gain_table(run_dirs) -> pd.DataFrame:
    """gain_rows of every run, in the order given."""
    return pd.DataFrame([row for run_dir in run_dirs for row in gain_rows(run_dir)])
