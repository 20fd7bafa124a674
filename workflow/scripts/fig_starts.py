"""Snakemake adapter: the first steps of every start of one system (runs of the grid, failed/,
probes/starts/) -> results/figures/fig_starts.{png,pdf}."""

from vitnqs import io
from vitnqs.plotting import fig_starts
from vitnqs.records import read_records_from_inputs
from vitnqs.reference import reference_energy
from vitnqs.starts import starts_of_system

inputs, params = snakemake.input, snakemake.params  # noqa: F821
records = read_records_from_inputs(params.configs, inputs.summaries, inputs.checkpoints,
                                   inputs.failed, inputs.start_probes)
system = params.system
chosen, starts = starts_of_system(records, system)
L, J2, n_layers, M = (system[key] for key in ("L", "J2", "n_layers", "n_samples"))
title = (f"Every start, {L}x{L}, J2 = {J2}, n_l = {n_layers}, M = {M}: its first steps (top) "
         f"and, trained past them, the whole run (bottom) ({len(starts)} starts; protocols "
         f"{', '.join(sorted(set(starts.protocol)))})")
figure = fig_starts(starts, {run_id: chosen[run_id].history for run_id in starts.run_id},
                    reference_energy(L, J2).value, title)
for path in snakemake.output:  # noqa: F821
    figure.savefig(path)
io.write_atomic(snakemake.log[0], f"fig_starts: {len(starts)} starts\n".encode())  # noqa: F821
