# Figures of each cell, and the tables and figures over every cell of the grid.


rule cell_figures:
    input:
        LAYOUT.summary(P),
    output:
        figures=[
            report(
                LAYOUT.cell_figure(P, name),
                caption=f"../report/cell_{name}.rst",
                category="Per cell",
                subcategory="{dataset}",
                labels={
                    "figure": name.replace("_", " "),
                    "pruning rate": "{rate}",
                    "seed": "{seed}",
                },
            )
            for name in L.CELL_FIGURES
        ],
        pdfs=[LAYOUT.cell_figure(P, name, "pdf") for name in L.CELL_FIGURES],
    log:
        LAYOUT.log("{dataset}/{vdir}seed{seed}/rate{rate}/cell_figures"),
    conda:
        ENV
    script:
        "../scripts/cell_figures.py"


rule tables_and_figures:
    input:
        summaries=summary_files(),
        comparison=LAYOUT.table("comparison.csv"),
    output:
        cells=LAYOUT.table("cells.csv"),
        cells_md=LAYOUT.table("cells.md"),
        by_rate=LAYOUT.table("by_rate.csv"),
        by_rate_md=LAYOUT.table("by_rate.md"),
        figures=[
            report(
                LAYOUT.figure(name),
                caption=f"../report/{name}.rst",
                category="Figures",
                # labelled like the per-cell figures: these draw every rate and seed of each dataset
                labels={
                    "figure": name.replace("_", " "),
                    "pruning rate": "all",
                    "seed": "all",
                },
            )
            for name in L.GRID_FIGURES
        ],
        pdfs=[LAYOUT.figure(name, "pdf") for name in L.GRID_FIGURES],
    log:
        LAYOUT.log("tables_and_figures"),
    conda:
        ENV
    script:
        "../scripts/tables_and_figures.py"


# Quantities against the setting the variants sweep (equitable_fl.sweep): only for a config that sweeps one.
if SWEEP_NAMES:

    rule sweep_figures:
        input:
            summaries=summary_files(),
        output:
            figures=[
                report(
                    LAYOUT.figure(name),
                    caption=f"../report/{name}.rst",
                    category="Sweeps",
                    labels={
                        "figure": name.replace("_", " "),
                        "pruning rate": "all",
                        "seed": "all",
                    },
                )
                for name in SWEEP_NAMES
            ],
            pdfs=[LAYOUT.figure(name, "pdf") for name in SWEEP_NAMES],
        log:
            LAYOUT.log("sweep_figures"),
        conda:
            ENV
        threads: 1
        params:
            points=[p.to_json() for p in SWEEP_POINTS],
            names=SWEEP_NAMES,
        script:
            "../scripts/sweep_figures.py"
