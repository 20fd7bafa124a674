"""Snakemake adapter: Fig. 2 (relative error vs step) from the histories of finished runs."""

from pathlib import Path

from vitnqs import io
from vitnqs.plotting import fig_learning_curves
from vitnqs.tables import summary_frame

runs = summary_frame([io.read_json(p) for p in snakemake.input.summaries])
histories = {
    Path(p).parent.name: io.read_csv(p, required=("step", "energy"))
    for p in snakemake.input.histories
}
figure = fig_learning_curves(histories, runs)
for path in snakemake.output:
    figure.savefig(path)
io.write_atomic(snakemake.log[0], f"fig2: {len(runs)} runs\n".encode())
