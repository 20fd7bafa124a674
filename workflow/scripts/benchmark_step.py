"""Snakemake adapter: time the vitnqs and plain-NetKet steps of one run config on a free GPU."""

import contextlib

from vitnqs.gpus import claim_gpus

with claim_gpus(), open(snakemake.log[0], "w") as log, contextlib.redirect_stdout(log):
    from vitnqs import benchmark
    from vitnqs.config import RunConfig

    rows = benchmark.benchmark(RunConfig.from_dict(snakemake.params.config),
                               n_timed=snakemake.params.steps,
                               baseline_chunk=snakemake.params.baseline_chunk,
                               peak_flops=benchmark.measure_peak_flops())
    print(benchmark.write_table(snakemake.output[0], rows).to_string(index=False))
