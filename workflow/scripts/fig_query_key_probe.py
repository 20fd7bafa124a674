"""Snakemake adapter: every start of one of the query-key probe's systems (runs of the grid,
failed/, start probes), coloured by model -> results/figures/{figure}.{png,pdf}, one figure per
entry of QUERY_KEY_FIGURES (workflow/rules/figures.smk)."""

from vitnqs import io
from vitnqs.probe_plots import fig_query_key_probe, with_query_key
from vitnqs.records import read_records_from_inputs
from vitnqs.reference import reference_energy
from vitnqs.starts import starts_of_system

inputs, params = snakemake.input, snakemake.params  # noqa: F821
records = read_records_from_inputs(params.configs, inputs.summaries, inputs.checkpoints,
                                   inputs.failed, inputs.start_probes)
system = params.system
chosen, starts = starts_of_system(records, system)
starts = with_query_key(starts, chosen)
L, J2, n_layers, M = (system[key] for key in ("L", "J2", "n_layers", "n_samples"))
protocols = ", ".join(sorted(set(starts.protocol))) or "none"
title = (f"t5's softmax or its queries and keys? Every start, {L}x{L}, J2 = {J2}, "
         f"n_l = {n_layers}, M = {M} (protocols: {protocols})")
figure = fig_query_key_probe(starts, {run_id: chosen[run_id].history for run_id in starts.run_id},
                             reference_energy(L, J2).value, title)
for path in snakemake.output:  # noqa: F821
    figure.savefig(path)
io.write_atomic(snakemake.log[0],  # noqa: F821
                f"{snakemake.wildcards.figure}: {len(starts)} starts\n".encode())  # noqa: F821
