"""Trained states read back from a run directory: ``vitnqs.load_run``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from vitnqs import io
from vitnqs.config import ConfigError, RunConfig


@dataclasses.dataclass(frozen=True)
class TrainedState:
    """A ViT with the parameters of one snapshot of a run."""

    model: Any
    """The flax ViT module."""
    variables: dict
    """Its variables, {'params': ...}, in the model's dtype."""
    config: RunConfig
    """The run's validated config."""
    step: int
    """The optimization step the parameters belong to (n_steps: the final state)."""
    summary: dict | None
    """summary.json of the run when it finished, else None."""

    @property
    def log_psi(self) -> Callable:
        """log psi(spins) for +-1 spins of shape (batch, L*L); jitted."""
        import jax

        return jax.jit(lambda spins: self.model.apply(self.variables, spins))

    def variational_state(self, n_samples: int | None = None, seed: int | None = None,
                          **sampler):
        """A NetKet MCState holding these parameters, for sampling and expectation values.

        ``n_samples`` and ``seed`` replace the run's; ``sampler`` may set the other RunConfig
        fields of sampling (n_chains, n_discard_per_chain, chunk_size). With a new n_samples
        and no n_chains or chunk_size given, chains default to one per sample, and the run's
        chunk size (a runtime setting) is kept where it still divides n_samples ('auto' is kept).
        """
        from vitnqs.train import build_variational_state

        changes = dict(sampler)
        if n_samples is not None:
            chunk = self.config.chunk_size
            changes.setdefault("n_chains", None)
            keep = chunk == "auto" or (isinstance(chunk, int) and n_samples % chunk == 0)
            changes.setdefault("chunk_size", chunk if keep else None)
            changes["n_samples"] = n_samples
        if seed is not None:
            changes["seed"] = seed
        config = self.config.replace(**changes) if changes else self.config
        return build_variational_state(config, model=self.model, variables=self.variables)


def available_snapshots(run_dir: Path | str) -> list[int]:
    """Steps with a saved parameter snapshot, sorted."""
    return sorted(int(p.stem.split("_")[1]) for p in Path(run_dir).glob("snapshots/step_*.msgpack"))


def read_run_config(run_dir: Path | str) -> RunConfig:
    """The config.yaml of a run folder, validated (no parameters read)."""
    config_path = Path(run_dir) / "config.yaml"
    if not config_path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory: {config_path.name} is missing")
    try:
        return RunConfig.from_dict(io.read_yaml(config_path))
    except ConfigError as error:  # e.g. the config of another version of vitnqs
        raise ConfigError(f"{config_path}: {error}") from None


def load_run(run_dir: Path | str, step: int | None = None) -> TrainedState:
    """The trained state of a run: final parameters, or the snapshot at ``step``."""
    import jax
    import jax.numpy as jnp

    from vitnqs.train import build_model

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    step = config.n_steps if step is None else int(step)
    path = run_dir / "snapshots" / f"step_{step:06d}.msgpack"
    if not path.exists():
        raise FileNotFoundError(
            f"{run_dir} has no snapshot at step {step}; available: {available_snapshots(run_dir)}"
        )
    model = build_model(config)
    target = model.init(jax.random.PRNGKey(0), jnp.ones((1, config.n_sites)))["params"]
    params = io.read_parameters(path, target=target, dtype=config.dtype)
    params = jax.tree_util.tree_map(jnp.asarray, params)
    summary_path = run_dir / "summary.json"
    summary = io.read_json(summary_path) if summary_path.exists() else None
    return TrainedState(model=model, variables={"params": params}, config=config, step=step,
                        summary=summary)
