"""Adapter: the committed SR-spectrum probes (vitnqs sr-spectrum) -> figure."""
import sys

import pandas as pd

from vitnqs import io
from vitnqs.spectrum_plots import fig_sr_spectrum

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
frame = pd.concat([io.read_csv(path) for path in snakemake.input.spectra])  # noqa: F821
figure = fig_sr_spectrum(frame)
for path in snakemake.output:  # noqa: F821
    figure.savefig(path)
