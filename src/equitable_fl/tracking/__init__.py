"""Experiment tracking: every finished grid cell in MLflow, logged exactly once, and tables read back from it.

The result files on disk are the source of truth; MLflow is a view of them that can be rebuilt at any time.
That is why logging is one serialised step at the end of the workflow (``track``) instead of calls from
inside the parallel training jobs: SQLite allows one writer, and a store that is down must never cost a
trained model. The modules are split by what they touch:

- ``store``: which tracking URI and experiment, and a client that fails fast with a clear message when the
  store cannot be reached (imports MLflow lazily, so the Snakefile can use it at parse time);
- ``cells``: what a cell's runs contain (params, tags, metrics, artifacts), built from result files only;
- ``log_cells``: writing those records idempotently (one parent run per cell, phases as child runs);
- ``compare``: ``mlflow.search_runs`` → the Equitable-FL vs vanilla comparison tables.

``docs/tracking.md`` describes the layout of the runs for users.
"""
