"""The run grid of the workflow: config/config.yaml -> one RunConfig per run id.

A config names protocols (sets of optimization settings) and groups of runs. A group is a list of
blocks; each block names a protocol and gives the grid keys (``GRID_KEYS``), each a value or a
list of values, whose Cartesian product is the block's runs. Any other key of a block is a
RunConfig field set for all its runs. One run's settings are, later winning:

    model  <  protocols[block["protocol"]]  <  the block's other keys  <  its grid point

and ``protocol`` is set to the protocol's name. Every run passes ``RunConfig.from_dict``, so a bad
value fails here, naming the group, the block and the key, before any job starts. Groups that
share a run id must give it the same config; otherwise the error names both groups.

This module imports no JAX: Snakemake calls it at parse time.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

from vitnqs.config import ConfigError, RunConfig

GRID_KEYS = ("L", "J2", "n_layers", "attention", "seed")
"""Block keys whose list values span a grid; any other key is passed to RunConfig as it is."""


@dataclasses.dataclass(frozen=True)
class RunGrid:
    """Every run of a workflow config, by run id, and the run ids of each group."""

    runs: dict[str, RunConfig]
    """Run id -> its validated config, in the order the config first names them."""
    groups: dict[str, list[str]]
    """Group name -> the run ids it names, without repeats."""

    def where(self, **filters: Any) -> list[str]:
        """Run ids whose RunConfig fields equal all the filters, e.g. where(L=6, J2=0.5)."""
        fields = {f.name for f in dataclasses.fields(RunConfig)} | {"run_id"}
        unknown = sorted(set(filters) - fields)
        if unknown:
            raise ConfigError(f"runs_where: unknown RunConfig field(s) {unknown}")
        return [
            run_id for run_id, config in self.runs.items()
            if all(getattr(config, key) == value for key, value in filters.items())
        ]

    def selected(self, filters: dict[str, Any] | list[dict[str, Any]]) -> list[str]:
        """Run ids that one filter selects (``where``), or any of a list of filters, in the
        grid's order: [{L: 6, n_layers: 1}, {L: 6, J2: 0.5, n_layers: 4, protocol: short}]."""
        filter_list = [filters] if isinstance(filters, dict) else list(filters)
        chosen = {run_id for one in filter_list for run_id in self.where(**one)}
        return [run_id for run_id in self.runs if run_id in chosen]


def build_run_grid(config: dict[str, Any]) -> RunGrid:
    """Expand and validate the groups of a workflow config; raise ConfigError naming the key."""
    model = config.get("model") or {}
    protocols = config.get("protocols") or {}
    runs: dict[str, RunConfig] = {}
    owner: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for group, blocks in (config.get("groups") or {}).items():
        groups[group] = []
        for index, block in enumerate(blocks):
            where = f"groups.{group}[{index}]"
            for run in expand_block(block, model, protocols, where):
                if run.run_id in runs and runs[run.run_id] != run:
                    raise ConfigError(_conflict(run.run_id, owner[run.run_id], where,
                                                runs[run.run_id], run))
                runs.setdefault(run.run_id, run)
                owner.setdefault(run.run_id, where)
                if run.run_id not in groups[group]:
                    groups[group].append(run.run_id)
    return RunGrid(runs=runs, groups=groups)


def runs_unlike_their_folders(grid: RunGrid, results: str | Path) -> list[str]:
    """One line per run whose folder holds a config.yaml with other science settings than the
    workflow config gives the run (a protocol edited after the run was trained): its results
    would pass for the new settings. Runtime keys (chunk sizes, ...) never count."""
    from vitnqs import io

    lines = []
    for run_id, wanted in grid.runs.items():
        path = Path(results) / "runs" / run_id / "config.yaml"
        if not path.exists():
            continue
        try:
            held = RunConfig.from_dict(io.read_yaml(path))
        except (ConfigError, io.CorruptFileError, TypeError) as error:
            lines.append(f"{path}: not a readable run config ({error})")
            continue
        changed = held.science_changes(wanted)
        if changed:
            lines.append(f"{path}: " + ", ".join(f"{key}={ours!r} (the config: {theirs!r})"
                                                 for key, (ours, theirs) in changed.items()))
    return lines


def expand_block(
    block: dict[str, Any], model: dict[str, Any], protocols: dict[str, dict], where: str
) -> list[RunConfig]:
    """The RunConfigs of one block (``where`` names it in error messages)."""
    settings = dict(block)
    name = settings.pop("protocol", None)
    if name not in protocols:
        raise ConfigError(
            f"{where}.protocol: {name!r} is not one of the protocols {sorted(protocols)}"
        )
    axes = {key: settings.pop(key) for key in GRID_KEYS if key in settings}
    axes = {key: value if isinstance(value, list) else [value] for key, value in axes.items()}
    base = {**model, **protocols[name], **settings, "protocol": name}
    runs = []
    for point in itertools.product(*axes.values()):
        raw = {**base, **dict(zip(axes, point))}
        try:
            runs.append(RunConfig.from_dict(raw))
        except ConfigError as error:
            raise ConfigError(f"{where} (protocol {name!r}): {error}") from None
    return runs


def _conflict(run_id: str, first: str, second: str, old: RunConfig, new: RunConfig) -> str:
    old_dict, new_dict = old.to_dict(), new.to_dict()
    keys = sorted(k for k in old_dict if old_dict[k] != new_dict[k])
    return (
        f"run {run_id} is defined differently by {first} and {second} (keys {keys} differ); "
        "a run id must mean one config: align the two groups or change the seed of one"
    )


def build_benchmark_runs(
    config: dict[str, Any], blocks: list[dict[str, Any]]
) -> dict[str, RunConfig]:
    """Run id -> RunConfig of the benchmark's blocks (same block format as the groups)."""
    if not isinstance(blocks, list):
        raise ConfigError(f"benchmark.runs must be a list of blocks, got {blocks!r}")
    model = config.get("model") or {}
    protocols = config.get("protocols") or {}
    runs: dict[str, RunConfig] = {}
    for index, block in enumerate(blocks):
        for run in expand_block(block, model, protocols, f"benchmark.runs[{index}]"):
            runs[run.run_id] = run
    return runs
