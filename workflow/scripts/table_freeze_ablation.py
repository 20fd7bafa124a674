"""Adapter: one row per run of the freeze ablation, checked against its run's final energy
-> .csv."""
import sys

from vitnqs import io
from vitnqs.analysis_tables import ablation_table

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
ablations = [io.read_json(path) for path in snakemake.input.ablations]  # noqa: F821
summaries = {summary["run_id"]: summary
             for summary in map(io.read_json, snakemake.input.summaries)}  # noqa: F821
io.write_csv(snakemake.output[0], ablation_table(ablations, summaries))  # noqa: F821
