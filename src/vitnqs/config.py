"""The configuration of one training run, validated once at the boundary.

``RunConfig.from_dict`` is the only way a run config enters the library: unknown keys, missing
keys, wrong types and out-of-range values all fail here with a ``ConfigError`` that names the
key, before anything is compiled or written. This module imports no JAX, so the workflow can
validate its whole run grid at parse time in milliseconds.

Defaults are the paper's protocol (Sec. "Optimization protocol" of shared/paper.md): 5000 steps,
M = 6000 samples, cosine decay of the learning rate from 0.03 to 0, diagonal shift 1e-4,
exchange moves up to graph distance 2, float64 parameters.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

MECHANISMS = ("t5", "decoupled", "factored")
"""The three attention mechanisms, spelled as everywhere in this project."""
POSITIONAL_INITS = ("xavier", "softmax-scale")
"""Initializations of the positional term p: Xavier-uniform over its (H, P) shape (every run of
the paper's comparison), or uniform in [-1/P, 1/P], the scale of a softmax row's weights, so that
a row's gain sum_j |p| starts near 1/2 on every lattice (vitnqs.positional_gain)."""


RUNTIME_KEYS = (
    "checkpoint_every", "checkpoint_seconds", "log_every", "chunk_size", "local_energy_block",
    "sr_on_the_fly",
)
"""Keys that change how a run executes (memory, logging, checkpoint cadence), not what it is:
a run directory may be resumed with other values of these."""


class ConfigError(ValueError):
    """A run config that cannot describe a valid run; the message names the offending key."""


def check_vit_arguments(
    L: int, *, d_model: int, n_heads: int, patch_size: int, attention: str,
    query_key: bool = True,
) -> None:
    """Raise ConfigError naming the first argument that makes no valid ViT for an L x L lattice."""
    if attention not in MECHANISMS:
        raise ConfigError(f"attention={attention!r} is not one of {MECHANISMS}")
    if not isinstance(query_key, bool):
        raise ConfigError(f"query_key must be true or false, got query_key={query_key!r}")
    if not query_key and attention != "t5":
        raise ConfigError(
            f"query_key=false applies to attention='t5' only, got attention={attention!r}: "
            "factored has no queries and keys, and decoupled without them is factored shifted "
            "by 1/n"
        )
    for name, value in (("d_model", d_model), ("n_heads", n_heads), ("patch_size", patch_size)):
        if not _is_int(value) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {name}={value!r}")
    if d_model % n_heads:
        raise ConfigError(f"n_heads={n_heads} does not divide d_model={d_model}")
    if L % patch_size:
        raise ConfigError(f"L={L} is not divisible by patch_size={patch_size}")
    if (L * L) % 2:
        raise ConfigError(f"L={L} gives an odd number of sites, which has no total Sz = 0 sector")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines one optimization run. Field docstrings give units and ranges."""

    # --- physics -------------------------------------------------------------------------
    L: int
    """Linear lattice size; N = L^2 sites on a torus."""
    J2: float
    """Next-nearest-neighbour coupling J2/J1."""
    # --- model ---------------------------------------------------------------------------
    n_layers: int
    """Number of encoder blocks n_l."""
    attention: str
    """Attention mechanism: 't5', 'decoupled' or 'factored'."""
    d_model: int = 60
    """Embedding dimension d."""
    n_heads: int = 10
    """Number of heads h (divides d)."""
    patch_size: int = 2
    """Linear patch size b (divides L)."""
    positional_init: str = "xavier"
    """Initialization of the positional term p_(i-j): one of POSITIONAL_INITS."""
    query_key: bool = True
    """Whether t5's softmax holds the query-key term; false leaves alpha = softmax_j(p_(i-j)), the
    same for every input (t5 only: the ablation that tells its softmax from its queries and
    keys)."""
    dtype: str = "float64"
    """Parameter dtype: 'float64' or 'float32'."""
    forward_dtype: str | None = None
    """Dtype of the network passes of sampling and local energies ('float32' with float64
    parameters: vitnqs.precision); null means ``dtype``. The Jacobian, the SR kernel and its
    solve follow ``dtype``."""
    # --- optimization --------------------------------------------------------------------
    seed: int = 0
    """Seed of the parameter initialization; the sampler uses seed + 1."""
    n_steps: int = 5000
    """Number of optimization steps."""
    n_samples: int = 6000
    """Monte Carlo samples M per step."""
    n_chains: int | None = None
    """Markov chains; None means one chain per sample (M chains)."""
    n_discard_per_chain: int = 0
    """Sweeps discarded per chain at each step (chains persist across steps)."""
    d_max: int = 2
    """Exchange moves swap spins up to this graph distance."""
    learning_rate: float = 0.03
    """Initial learning rate of the cosine decay."""
    learning_rate_final: float = 0.0
    """Learning rate reached at the last step."""
    diag_shift: float = 1e-3
    """Diagonal shift of stochastic reconfiguration (from step diag_shift_initial_steps on)."""
    diag_shift_initial: float | None = None
    """Diagonal shift of the first diag_shift_initial_steps steps, a damped start; None: the
    shift is diag_shift from step 0."""
    diag_shift_initial_steps: int = 0
    """How many steps, from step 0, use diag_shift_initial (0 without one)."""
    chunk_size: int | str | None = "auto"
    """Samples per pass of log psi and per Jacobian block; None evaluates all M at once;
    'auto' chooses from the device's free memory (vitnqs.memory; None on a CPU) and logs it."""
    local_energy_block: int | str = "auto"
    """Connected configurations per network pass in the local energies (vitnqs.exchange);
    'auto' chooses from the device's free memory and logs it."""
    sr_on_the_fly: bool | None = None
    """Build the SR kernel without storing the Jacobian (True), storing it (False), or let
    NetKet choose (None). False is faster for small models; True saves memory."""
    # --- outputs -------------------------------------------------------------------------
    n_samples_final: int = 600_000
    """Fresh samples for the final energy estimate."""
    snapshot_steps: tuple[int, ...] | None = None
    """Steps whose parameters are saved for analysis; None: 0, ~10 log-spaced, and the last."""
    snapshot_dtype: str = "float32"
    """Dtype of intermediate snapshots; the final parameters are always saved in float64."""
    checkpoint_every: int = 50
    """Write a checkpoint at least every this many steps."""
    checkpoint_seconds: float = 600.0
    """... and at least every this many wall-clock seconds."""
    log_every: int = 10
    """Progress line every this many steps."""
    protocol: str = "custom"
    """Name of the protocol this run follows, shown in every table and figure."""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        """Validate a plain mapping (from YAML or JSON) and build the config."""
        if not isinstance(raw, dict):
            raise ConfigError(f"a run config must be a mapping, got {type(raw).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(fields))
        if unknown:
            raise ConfigError(f"unknown key(s) {unknown}; valid keys are {sorted(fields)}")
        missing = [
            name for name, f in fields.items()
            if f.default is dataclasses.MISSING and name not in raw
        ]
        if missing:
            raise ConfigError(f"missing required key(s) {missing}")
        values = dict(raw)
        if values.get("forward_dtype") is None:  # spelled out, so that both spellings are one run
            values["forward_dtype"] = values.get("dtype", cls.dtype)
        if isinstance(values.get("snapshot_steps"), list):
            values["snapshot_steps"] = tuple(values["snapshot_steps"])
        config = cls(**values)
        config._validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if out["snapshot_steps"] is not None:
            out["snapshot_steps"] = list(out["snapshot_steps"])
        return out

    def science(self) -> dict[str, Any]:
        """The keys that define what the run computes (all but RUNTIME_KEYS)."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_KEYS}

    def science_changes(self, other: RunConfig) -> dict[str, tuple[Any, Any]]:
        """The science keys whose values differ, sorted: key -> (self's value, other's)."""
        mine, theirs = self.science(), other.science()
        return {key: (mine.get(key), theirs.get(key)) for key in sorted(set(mine) | set(theirs))
                if mine.get(key) != theirs.get(key)}

    def diag_shift_at(self, step: int) -> float:
        """The diagonal shift of SR at an optimization step (0-based)."""
        if self.diag_shift_initial is not None and step < self.diag_shift_initial_steps:
            return self.diag_shift_initial
        return self.diag_shift

    def replace(self, **changes) -> RunConfig:
        return RunConfig.from_dict({**self.to_dict(), **changes})

    # --- validation ------------------------------------------------------------------------
    def _validate(self) -> None:
        for name in ("L", "n_layers", "d_model", "n_heads", "patch_size", "seed", "n_steps",
                     "n_samples", "n_discard_per_chain", "d_max", "n_samples_final",
                     "checkpoint_every", "log_every"):
            if not _is_int(getattr(self, name)):
                raise ConfigError(f"{name} must be an integer, got {name}={getattr(self, name)!r}")
        for name in ("J2", "learning_rate", "learning_rate_final", "diag_shift",
                     "checkpoint_seconds"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {name}={value!r}")
        positive = ("L", "n_layers", "n_steps", "n_samples", "d_max", "n_samples_final",
                    "checkpoint_every", "log_every", "learning_rate", "diag_shift",
                    "checkpoint_seconds")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {name}={getattr(self, name)!r}")
        for name in ("seed", "n_discard_per_chain", "learning_rate_final"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {name}={getattr(self, name)!r}")
        if self.seed >= 2**31 - 1:  # the sampler's seed, seed + 1, must fit JAX's int32 key
            raise ConfigError(f"seed must be < 2**31 - 1, got seed={self.seed}")
        if self.diag_shift_initial is not None:
            value = self.diag_shift_initial
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise ConfigError(
                    f"diag_shift_initial must be a positive number or null, got {value!r}")
        steps, limit = self.diag_shift_initial_steps, self.n_steps
        if not _is_int(steps) or not 0 <= steps <= limit:
            raise ConfigError(f"diag_shift_initial_steps must be an integer in [0, n_steps="
                              f"{limit}], got {steps!r}")
        if (self.diag_shift_initial is None) != (steps == 0):
            raise ConfigError(
                "diag_shift_initial and diag_shift_initial_steps come together: a damped start "
                "needs both a shift and a positive number of steps, got "
                f"diag_shift_initial={self.diag_shift_initial!r}, "
                f"diag_shift_initial_steps={steps!r}")
        if self.learning_rate_final > self.learning_rate:
            raise ConfigError(
                f"learning_rate_final={self.learning_rate_final} exceeds "
                f"learning_rate={self.learning_rate}"
            )
        for name in ("dtype", "snapshot_dtype", "forward_dtype"):
            if getattr(self, name) not in ("float64", "float32"):
                raise ConfigError(
                    f"{name} must be 'float64' or 'float32', got {getattr(self, name)!r}"
                )
        if self.forward_dtype == "float64" and self.dtype == "float32":
            raise ConfigError(
                "forward_dtype='float64' needs dtype='float64' (parameters are float32)"
            )
        if not isinstance(self.attention, str):
            raise ConfigError(f"attention must be a string, got attention={self.attention!r}")
        if not isinstance(self.protocol, str) or not re.fullmatch(r"[A-Za-z0-9-]+", self.protocol):
            raise ConfigError(
                "protocol must be a name of letters, digits and '-' (it ends the run id "
                f"and the run's folder name), got protocol={self.protocol!r}"
            )
        check_vit_arguments(
            self.L, d_model=self.d_model, n_heads=self.n_heads, patch_size=self.patch_size,
            attention=self.attention, query_key=self.query_key,
        )
        if self.positional_init not in POSITIONAL_INITS:
            raise ConfigError(
                f"positional_init={self.positional_init!r} is not one of {POSITIONAL_INITS}"
            )
        if self.n_chains is not None:
            if not _is_int(self.n_chains) or self.n_chains < 1:
                raise ConfigError(
                    f"n_chains must be a positive integer or null, got {self.n_chains!r}"
                )
            if self.n_samples % self.n_chains:
                raise ConfigError(
                    f"n_chains={self.n_chains} does not divide n_samples={self.n_samples}"
                )
        if self.sr_on_the_fly is not None and not isinstance(self.sr_on_the_fly, bool):
            raise ConfigError(
                f"sr_on_the_fly must be true, false or null, got {self.sr_on_the_fly!r}"
            )
        if self.chunk_size not in (None, "auto"):
            if not _is_int(self.chunk_size) or self.chunk_size < 1:
                raise ConfigError(
                    "chunk_size must be a positive integer, 'auto' or null, "
                    f"got {self.chunk_size!r}"
                )
            if self.n_samples % self.chunk_size:
                raise ConfigError(
                    f"chunk_size={self.chunk_size} does not divide n_samples={self.n_samples}"
                )
        if self.local_energy_block != "auto" and (
            not _is_int(self.local_energy_block) or self.local_energy_block < 1
        ):
            raise ConfigError(
                f"local_energy_block must be a positive integer or 'auto', "
                f"got {self.local_energy_block!r}"
            )
        if self.snapshot_steps is not None:
            if not isinstance(self.snapshot_steps, tuple):
                raise ConfigError(f"snapshot_steps must be a list of steps or null, "
                                  f"got {self.snapshot_steps!r}")
            for step in self.snapshot_steps:
                if not _is_int(step) or not 0 <= step <= self.n_steps:
                    raise ConfigError(
                        f"snapshot_steps must hold integers in [0, n_steps={self.n_steps}], "
                        f"got {step!r}"
                    )

    # --- derived -------------------------------------------------------------------------
    @property
    def n_sites(self) -> int:
        return self.L * self.L

    @property
    def chains(self) -> int:
        return self.n_samples if self.n_chains is None else self.n_chains

    @property
    def snapshots(self) -> tuple[int, ...]:
        """The steps at which parameters are saved, sorted, always with 0 and n_steps."""
        if self.snapshot_steps is not None:
            steps = set(self.snapshot_steps)
        else:
            steps = {int(round(s)) for s in _geomspace(1, self.n_steps, 10)}
        return tuple(sorted(steps | {0, self.n_steps}))

    @property
    def run_id(self) -> str:
        """A name that says what the run is and how it was optimized, e.g. L6_J0.5_nl4_t5_s0_paper:
        the same network under two protocols is two runs."""
        return (f"L{self.L}_J{self.J2:g}_nl{self.n_layers}_{self.attention}_s{self.seed}"
                f"_{self.protocol}")


RUN_ID_PATTERN = re.compile(
    r"L(?P<L>\d+)_J(?P<J2>[-+.\deE]+)_nl(?P<n_layers>\d+)_(?P<attention>[a-z0-9]+)"
    r"_s(?P<seed>\d+)_(?P<protocol>[A-Za-z0-9-]+)"
)
"""RunConfig.run_id's format, read back by parse_run_id."""


def parse_run_id(run_id: str) -> dict[str, Any]:
    """The fields a run id names (RunConfig.run_id read back): L, J2, n_layers, attention, seed,
    protocol. For files that carry only the run id (the analysis tables)."""
    match = RUN_ID_PATTERN.fullmatch(run_id)
    if match is None:
        raise ConfigError(f"{run_id!r} is not a run id like L6_J0.5_nl4_t5_s0_paper")
    fields = match.groupdict()
    return {**fields, "L": int(fields["L"]), "J2": float(fields["J2"]),
            "n_layers": int(fields["n_layers"]), "seed": int(fields["seed"])}


def _geomspace(start: float, stop: float, num: int) -> list[float]:
    if stop <= start:
        return [float(stop)]
    ratio = (stop / start) ** (1 / (num - 1))
    return [start * ratio**k for k in range(num)]
