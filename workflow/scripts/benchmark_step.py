"""Snakemake adapter: time the vitnqs and plain-NetKet steps of one run config on a free GPU."""

import contextlib

import pandas as pd

from vitnqs.gpus import claim_gpu

with claim_gpu(), open(snakemake.log[0], "w") as log, contextlib.redirect_stdout(log):
    from vitnqs import benchmark, io, provenance
    from vitnqs.config import RunConfig

    config = RunConfig.from_dict(snakemake.params.config)
    rows = benchmark.benchmark(config, n_timed=snakemake.params.steps,
                               baseline_chunk=snakemake.params.baseline_chunk,
                               peak_flops=benchmark.measure_peak_flops())
    table = pd.DataFrame(rows).assign(git_commit=provenance.git_commit())
    print(table.to_string(index=False))
    io.write_csv(snakemake.output[0], table)
