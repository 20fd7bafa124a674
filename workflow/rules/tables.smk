# Tables: read finished runs, never train (inputs come from finished_runs in common.smk).


rule table1:
    input:
        summaries=get_group_files("table1", "summary.json"),
        code="src/vitnqs/tables.py",
    output:
        csv=report(f"{RESULTS}/tables/table1.csv", caption="../report/table1.rst", category="Tables"),
        md=f"{RESULTS}/tables/table1.md",
        tex=f"{RESULTS}/tables/table1.tex",
    log:
        f"{RESULTS}/logs/table1.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/table1.py"
