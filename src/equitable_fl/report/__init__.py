"""Tables and figures that compare Equitable-FL with vanilla FedAvg across the whole grid.

The inputs are the per-cell ``summary.json`` files written by ``equitable_fl.stages.summary``; nothing
here re-reads training artifacts, so a report can be rebuilt from summaries alone. ``tables`` turns the
summaries into per-cell and per-rate tables (CSV for machines, Markdown for people) and ``figures``
draws the paper-style plots. Both tolerate null fields (a target never reached, a speed-up that could not
be computed) and show them as "n/a" instead of failing.
"""
