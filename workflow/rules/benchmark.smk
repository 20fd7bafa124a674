# Step benchmark (GPU): the vitnqs step against a plain-NetKet step, in one process per run
# config, for each L and mechanism of config `benchmark` (vitnqs.benchmark). Not part of `all`:
# run `snakemake --cores all benchmark` on a GPU machine, then commit the table. Fig. 3 (right)
# draws results/benchmarks/*.csv.
#
# Uses from common.smk: RESULTS, BENCHMARK, BENCHMARK_RUNS.


rule benchmark_step:
    output:
        f"{RESULTS}/benchmarks/{BENCHMARK['label']}/{{bench}}.csv",
    params:
        config=lambda wildcards: BENCHMARK_RUNS[wildcards.bench].to_dict(),
        steps=BENCHMARK["steps"],
        baseline_chunk=BENCHMARK["baseline_chunk"],
    log:
        f"{RESULTS}/logs/benchmark/{BENCHMARK['label']}/{{bench}}.log",
    resources:
        gpu=1,
    conda:
        "../../environment.yml"
    script:
        "../scripts/benchmark_step.py"


rule benchmark:
    input:
        expand(rules.benchmark_step.output[0], bench=sorted(BENCHMARK_RUNS)),
    output:
        f"{RESULTS}/benchmarks/{BENCHMARK['label']}_step_times.csv",
    log:
        f"{RESULTS}/logs/benchmark/{BENCHMARK['label']}.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/benchmark_table.py"
