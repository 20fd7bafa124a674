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

    def variational_state(self, n_samples: int | None = None, seed: int | None = None):
        """A NetKet MCState holding these parameters, for sampling and expectation values."""
        from vitnqs.train import build_variational_state

        config = self.config
        if n_samples is not None:
            chunk = config.chunk_size  # a runtime setting of the run; kept where it still divides M
            config = config.replace(n_samples=n_samples, n_chains=None,
                                    chunk_size=chunk if chunk and n_samples % chunk == 0 else None)
        if seed is not None:
            config = config.replace(seed=seed)
        return build_variational_state(config, model=self.model, variables=self.variables)


def available_snapshots(run_dir: Path | str) -> list[int]:
    """Steps with a saved parameter snapshot, sorted."""
    return sorted(int(p.stem.split("_")[1]) for p in Path(run_dir).glob("snapshots/step_*.msgpack"))


def load_run(run_dir: Path | str, step: int | None = None) -> TrainedState:
    """The trained state of a run: final parameters, or the snapshot at ``step``."""
    import jax
    import jax.numpy as jnp

    from vitnqs.train import build_model

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory: {config_path.name} is missing")
    try:
        config = RunConfig.from_dict(io.read_yaml(config_path))
    except ConfigError as error:  # e.g. the config of another version of vitnqs
        raise ConfigError(f"{config_path}: {error}") from None
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
