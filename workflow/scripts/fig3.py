"""Snakemake adapter: Fig. 3 (accuracy and time per step vs L) from finished runs and benchmarks."""

from pathlib import Path

from vitnqs import io
from vitnqs.plotting import fig_scaling, select_timings
from vitnqs.tables import summary_frame

runs = summary_frame([io.read_json(p) for p in snakemake.input.summaries])
benchmarks = {
    Path(p).name: io.read_csv(p, required=("L", "attention", "seconds_per_step"))
    for p in snakemake.input.benchmarks
}
timings, timing_source = select_timings(runs, benchmarks)
figure = fig_scaling(runs, timings, timing_source)
for path in snakemake.output:
    figure.savefig(path)
io.write_atomic(snakemake.log[0],
                f"fig3: {len(runs)} runs, timings from {timing_source}\n".encode())
