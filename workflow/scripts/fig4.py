"""Adapter: paper Fig. 4 from the attention maps of the 6x6, n_l = 1, J2 = 0.5 runs."""
import sys

from vitnqs import io
from vitnqs.attention_plots import fig4

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
maps = {
    name: io.read_npz(path)
    for name, path in snakemake.input.items()  # noqa: F821
    if name in ("t5", "decoupled")
}
figure = fig4(maps.get("t5"), maps.get("decoupled"))
for path in snakemake.output:  # noqa: F821
    figure.savefig(path)
