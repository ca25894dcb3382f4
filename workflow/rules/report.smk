# Tables and figures over every cell of the grid.


rule tables_and_figures:
    input:
        summary_files(),
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
