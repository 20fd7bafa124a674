"""Adapter: the Shastry-Sutherland dimer state as factored attention, checked -> .json."""
import sys

from vitnqs import io, provenance
from vitnqs.shastry_sutherland import check

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
settings = snakemake.params.check  # noqa: F821
with provenance.recorded(snakemake.output.provenance, **settings):  # noqa: F821
    io.write_json(snakemake.output[0], check(**settings))  # noqa: F821
