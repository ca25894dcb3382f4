# Figures of clients that come and go (clients.availability), for a config in which some variant makes
# the fleet dynamic: participation over rounds by tier, and final accuracy and simulated time to target
# against the measured dropout rate (equitable_fl.report.figures.availability).


rule availability_figures:
    input:
        summaries=summary_files(),
    output:
        figures=[
            report(
                LAYOUT.figure(name),
                caption=f"../report/{name}.rst",
                category="Dynamic availability",
                labels={
                    "figure": name.replace("_", " "),
                    "pruning rate": "all",
                    "seed": "all",
                },
            )
            for name in L.AVAILABILITY_FIGURES
        ],
        pdfs=[LAYOUT.figure(name, "pdf") for name in L.AVAILABILITY_FIGURES],
    log:
        LAYOUT.log("availability_figures"),
    conda:
        ENV
    script:
        "../scripts/availability_figures.py"
