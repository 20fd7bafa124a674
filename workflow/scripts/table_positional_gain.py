"""Adapter: snapshots of the finished decoupled and factored runs -> the gain of p, .csv."""
import sys
from pathlib import Path

from vitnqs import io
from vitnqs.positional_gain import gain_table

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
run_dirs = [Path(path).parent for path in snakemake.input.summaries]  # noqa: F821
io.write_csv(snakemake.output[0], gain_table(run_dirs))  # noqa: F821
print(f"table_positional_gain: {len(run_dirs)} runs")
