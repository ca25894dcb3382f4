# Figures of each cell, and the tables and figures over every cell of the grid.

CELL_FIGURES = ["accuracy_vs_round", "model_size", "clients_per_phase"]


rule cell_figures:
    input:
        f"{RATE_CELL}/summary.json",
    output:
        figures=[
            report(
                f"{RATE_CELL}/figures/{name}.png",
                caption=f"../report/cell_{name}.rst",
                category="Per cell",
                subcategory="{dataset}",
                labels={
                    "figure": name.replace("_", " "),
                    "pruning rate": "{rate}",
                    "seed": "{seed}",
                },
            )
            for name in CELL_FIGURES
        ],
        pdfs=[f"{RATE_CELL}/figures/{name}.pdf" for name in CELL_FIGURES],
    log:
        f"{R}/logs/{{dataset}}/seed{{seed}}/rate{{rate}}/cell_figures.log",
    conda:
        ENV
    script:
        "../scripts/cell_figures.py"


rule tables_and_figures:
    input:
        summaries=summary_files(),
        comparison=f"{R}/tables/comparison.csv",
    output:
        cells=f"{R}/tables/cells.csv",
        cells_md=f"{R}/tables/cells.md",
        by_rate=f"{R}/tables/by_rate.csv",
        by_rate_md=f"{R}/tables/by_rate.md",
        figures=[
            report(
                f"{R}/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category="Figures",
            )
            for name in FIGURES
        ],
        pdfs=expand(f"{R}/figures/{{name}}.pdf", name=FIGURES),
    log:
        f"{R}/logs/tables_and_figures.log",
    conda:
        ENV
    script:
        "../scripts/tables_and_figures.py"
