"""Tables and figures of the report, on summaries derived from a real ``summary.json``.

The builder below starts from the recorded fixture and changes only what a test needs (dataset, rate,
seed, accuracies, optional nulls), so the report code sees the real summary layout, not a hand-made one.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from equitable_fl.report import figures, tables
from equitable_fl.stages import report as report_stage

FIXTURE = Path(__file__).parent / "fixtures" / "summary_mnist-sample_rate0.5_seed0.json"
BASE: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
# The tests below cover a cell whose Equitable-FL run never reached the target accuracy.
BASE["rounds_to_target"].update(rounds_to_target=None, rounds_speedup=None)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_summary(
    dataset: str = "mnist-sample",
    rate: float = 0.5,
    seed: int = 0,
    *,
    acc: float | None = None,
    vanilla_acc: float | None = None,
    eq_bytes: int | None = None,
    vanilla_bytes: int | None = None,
    rounds_speedup: float | str | None = "keep",
) -> dict[str, Any]:
    """A copy of the fixture re-labelled as another cell, with the phase sparsity following ``rate``.

    Accuracies are fractions (as in summaries); when given, the final accuracy, the last curve point and
    the stored gap are kept consistent the way ``stages.summary`` would write them. The curves are
    shifted by a seed-dependent offset so several seeds give a real min–max band.
    """
    s = copy.deepcopy(BASE)
    s["dataset"], s["pruning_rate"], s["seed"] = dataset, float(rate), int(seed)
    shift = 0.004 * (seed - 1)
    for point in s["curve"] + s["vanilla"]["curve"]:
        point["accuracy"] = min(1.0, max(0.0, point["accuracy"] + shift))
    dense = s["phases"][0]["dense_bytes"]
    for k, phase in enumerate(s["phases"]):
        sparsity = 1.0 - (1.0 - rate) ** k
        phase["sparsity"] = sparsity
        phase["encoded_bytes"] = int(dense * (1.0 - sparsity) * 1.15) if k else phase["encoded_bytes"]
        phase["size_reduction_pct"] = 100.0 * (1.0 - phase["encoded_bytes"] / dense)
        phase["flop_speedup"] = 1.0 / max(1.0 - sparsity, 1e-9)
    last = s["phases"][-1]
    final = s["final"]
    final.update(
        sparsity=last["sparsity"],
        encoded_bytes=last["encoded_bytes"],
        size_reduction_pct=last["size_reduction_pct"],
        flop_speedup_model=last["flop_speedup"],
    )
    if acc is not None:
        final["final_accuracy"] = last["final_accuracy"] = s["curve"][-1]["accuracy"] = acc
    if vanilla_acc is not None:
        final["vanilla_accuracy"] = s["vanilla"]["final_accuracy"] = vanilla_acc
        s["vanilla"]["curve"][-1]["accuracy"] = vanilla_acc
    final["accuracy_gap_pp"] = 100.0 * (final["final_accuracy"] - final["vanilla_accuracy"])
    if eq_bytes is not None:
        final["bytes_communicated"] = eq_bytes
    if vanilla_bytes is not None:
        final["vanilla_bytes_communicated"] = s["vanilla"]["bytes_communicated"] = vanilla_bytes
    if rounds_speedup != "keep":
        s["rounds_to_target"]["rounds_speedup"] = rounds_speedup
        s["rounds_to_target"]["rounds_to_target"] = 10 if rounds_speedup is not None else None
    return s


def grid(datasets: list[str], rates: list[float], seeds: list[int]) -> list[dict[str, Any]]:
    return [
        make_summary(d, r, sd, acc=0.95 - 0.05 * r + 0.002 * sd, vanilla_acc=0.972 + 0.001 * sd)
        for d in datasets
        for r in rates
        for sd in seeds
    ]


# ----------------------------------------------------------------------------------------------------
# Tables


def test_cell_table_rows_sorted_and_values() -> None:
    summaries = [
        make_summary("b-set", 0.7, 1, acc=0.90, vanilla_acc=0.93, eq_bytes=250, vanilla_bytes=1000),
        make_summary("a-set", 0.5, 2, acc=0.95, vanilla_acc=0.94, eq_bytes=400, vanilla_bytes=1000),
        make_summary("a-set", 0.5, 0, acc=0.91, vanilla_acc=0.97, eq_bytes=500, vanilla_bytes=2000),
        make_summary("a-set", 0.3, 5),
    ]
    df = tables.cell_table(summaries)
    assert list(df.columns) == list(tables.CELL_COLUMNS)
    assert len(df) == 4
    keys = list(df[["dataset", "pruning_rate", "seed"]].itertuples(index=False, name=None))
    assert keys == [("a-set", 0.3, 5), ("a-set", 0.5, 0), ("a-set", 0.5, 2), ("b-set", 0.7, 1)]

    row = df.iloc[1]  # a-set, 0.5, seed 0
    assert row["final_accuracy_pct"] == pytest.approx(91.0)
    assert row["vanilla_accuracy_pct"] == pytest.approx(97.0)
    assert row["accuracy_gap_pp"] == pytest.approx(-6.0)
    assert row["comm_reduction_pct"] == pytest.approx(75.0)  # 1 - 500/2000
    assert df.iloc[2]["accuracy_gap_pp"] == pytest.approx(1.0)
    assert df.iloc[3]["comm_reduction_pct"] == pytest.approx(75.0)  # 1 - 250/1000
    assert row["sparsity_pct"] == pytest.approx(100.0 * (1 - 0.5**2))
    assert row["clients_final_phase"] == BASE["phases"][-1]["clients_took_part"]
    assert row["flop_speedup_training"] == pytest.approx(BASE["final"]["flop_speedup_training"])
    assert row["wallclock_speedup"] == pytest.approx(BASE["measured"]["wallclock_speedup"])
    assert row["vanilla_rounds_to_target"] == BASE["rounds_to_target"]["vanilla_rounds_to_target"]
    assert pd.isna(row["rounds_to_target"])  # null in the fixture: target never reached
    assert math.isnan(row["rounds_speedup"])


def test_cell_table_matches_real_fixture() -> None:
    df = tables.cell_table(tables.load_summaries([FIXTURE]))
    row = df.iloc[0]
    final = BASE["final"]
    assert row["accuracy_gap_pp"] == pytest.approx(final["accuracy_gap_pp"])
    assert row["size_reduction_pct"] == pytest.approx(final["size_reduction_pct"])
    expected = 100.0 * (1.0 - final["bytes_communicated"] / final["vanilla_bytes_communicated"])
    assert row["comm_reduction_pct"] == pytest.approx(expected)


def test_duplicate_cells_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        tables.cell_table([make_summary(seed=1), make_summary(seed=1)])


def test_grouped_table_mean_std_over_seeds() -> None:
    accs = [0.90, 0.93, 0.97]
    summaries = [make_summary("ds", 0.5, sd, acc=a, vanilla_acc=0.95) for sd, a in enumerate(accs)]
    summaries += [make_summary("ds", 0.8, 0, acc=0.80, vanilla_acc=0.95)]
    g = tables.grouped_table(summaries)
    assert len(g) == 2
    assert list(g["pruning_rate"]) == [0.5, 0.8]
    assert list(g["n_seeds"]) == [3, 1]
    row = g.iloc[0]
    pct = 100.0 * np.array(accs)
    assert row["final_accuracy_pct_mean"] == pytest.approx(np.mean(pct))
    assert row["final_accuracy_pct_std"] == pytest.approx(np.std(pct, ddof=1))
    assert row["accuracy_gap_pp_mean"] == pytest.approx(np.mean(pct - 95.0))
    assert row["vanilla_accuracy_pct_std"] == pytest.approx(0.0)
    assert math.isnan(g.iloc[1]["final_accuracy_pct_std"])  # one seed: no spread, not a fake 0


def test_grouped_table_rounds_mean_skips_unreached_seeds() -> None:
    summaries = [
        make_summary(seed=0, rounds_speedup=1.2),
        make_summary(seed=1, rounds_speedup=None),
        make_summary(seed=2, rounds_speedup=1.6),
    ]
    row = tables.grouped_table(summaries).iloc[0]
    assert row["n_reached_target"] == 2
    assert row["rounds_speedup_mean"] == pytest.approx(1.4)


def test_markdown_tables(tmp_path: Path) -> None:
    summaries = [
        make_summary("ds", r, sd, acc=0.95 + 0.01 * sd, vanilla_acc=0.97)
        for r in (0.3, 0.5)
        for sd in (0, 1, 2)
    ]
    cells = tables.cell_table(summaries)
    tables.write_table(cells, tmp_path / "cells.csv", tmp_path / "cells.md", "Per cell")
    md = (tmp_path / "cells.md").read_text(encoding="utf-8").splitlines()
    assert md[0] == "# Per cell"
    table = [line for line in md if line.startswith("|")]
    assert table[0] == "| " + " | ".join(tables.CELL_COLUMNS) + " |"
    assert set(table[1].replace("|", "").split()) <= {"---:", ":---"}
    assert len(table) == 2 + len(cells)
    assert all(line.count("|") == len(tables.CELL_COLUMNS) + 1 for line in table)
    assert "| n/a |" in table[2]  # rounds_to_target is null in every cell

    back = pd.read_csv(tmp_path / "cells.csv")
    assert len(back) == len(cells)
    np.testing.assert_allclose(
        back["accuracy_gap_pp"], cells["accuracy_gap_pp"], rtol=0, atol=0
    )  # full precision

    grouped = tables.grouped_table(summaries)
    tables.write_table(grouped, tmp_path / "g.csv", tmp_path / "g.md", "By rate")
    gmd = [line for line in (tmp_path / "g.md").read_text(encoding="utf-8").splitlines() if line[:1] == "|"]
    assert len(gmd) == 2 + 2
    header = [h.strip() for h in gmd[0].strip("|").split("|")]
    assert "final_accuracy_pct" in header and "final_accuracy_pct_mean" not in header
    cell = [c.strip() for c in gmd[2].strip("|").split("|")][header.index("final_accuracy_pct")]
    mean, std = np.mean([95.0, 96.0, 97.0]), np.std([95.0, 96.0, 97.0], ddof=1)
    assert cell == f"{mean:.2f} ± {std:.2f}" == "96.00 ± 1.00"
    assert [c.strip() for c in gmd[2].strip("|").split("|")][header.index("n_seeds")] == "3"
    assert "g.csv" in {p.name for p in tmp_path.iterdir()}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_none_values_render_as_na() -> None:
    assert tables.format_value(None, "accuracy_gap_pp") == "n/a"
    assert tables.format_value(float("nan"), "accuracy_gap_pp") == "n/a"
    assert tables.format_value(pd.NA, "seed") == "n/a"
    assert tables.format_value(12.0, "rounds_to_target") == "12"
    assert tables.format_value(0.5, "pruning_rate") == "0.5"
    assert tables.format_value(97.2049, "final_accuracy_pct") == "97.20"


def test_cell_with_missing_optional_values() -> None:
    s = make_summary(rounds_speedup=None)
    s["final"]["flop_speedup_training"] = None
    s["final"]["vanilla_bytes_communicated"] = 0
    s["measured"]["wallclock_speedup"] = None
    del s["rounds_to_target"]["vanilla_rounds_to_target"]
    s["final"]["vanilla_accuracy"] = None
    df = tables.cell_table([s])
    row = df.iloc[0]
    for col in (
        "flop_speedup_training",
        "comm_reduction_pct",
        "wallclock_speedup",
        "rounds_speedup",
        "vanilla_accuracy_pct",
    ):
        assert math.isnan(row[col]), col
    assert row["accuracy_gap_pp"] == pytest.approx(
        s["final"]["accuracy_gap_pp"]
    )  # falls back to the stored gap
    md = tables.to_markdown(df, "t")
    assert md.count("n/a") >= 6
    assert len(tables.grouped_table([s])) == 1


def test_empty_inputs() -> None:
    assert tables.cell_table([]).empty
    assert tables.grouped_table([]).empty
    with pytest.raises(ValueError):
        figures.write_all([], "unused")


# ----------------------------------------------------------------------------------------------------
# Figures


def assert_figure_files(paths: list[Path]) -> None:
    assert paths
    for path in paths:
        data = path.read_bytes()
        assert len(data) > 5_000, path
        if path.suffix == ".png":
            assert data.startswith(PNG_MAGIC), path
        else:
            assert path.suffix == ".pdf" and data.startswith(b"%PDF"), path
            assert b"CreationDate" not in data, path


def test_write_all_two_datasets_two_rates_two_seeds(tmp_path: Path) -> None:
    summaries = grid(["mnist-sample", "cifar10-sample"], [0.3, 0.5], [0, 1])
    written = figures.write_all(summaries, tmp_path / "figs")
    expected = {f"{stem}.{ext}" for stem in figures.FIGURES for ext in ("png", "pdf")}
    assert {p.name for p in written} == expected
    assert set(figures.FIGURES) == {
        "accuracy_vs_round",
        "accuracy_vs_simulated_time",
        "accuracy_vs_sparsity",
        "model_size",
        "clients_per_phase",
    }
    assert_figure_files(written)
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(expected)  # no temp leftovers


@pytest.mark.parametrize("stem", sorted(figures.FIGURES))
def test_each_figure_single_cell_with_nulls(tmp_path: Path, stem: str) -> None:
    s = make_summary(rounds_speedup=None)
    s["final"]["flop_speedup_training"] = None
    s["measured"]["wallclock_speedup"] = None
    s["phases"][0]["eligible_by_tier"] = None
    s["final"]["sparsity"] = None
    s["phases"][1]["encoded_bytes"] = None
    s["vanilla"]["clients_took_part"] = None
    written = figures.FIGURES[stem]([s], tmp_path / stem)
    assert [p.name for p in written] == [f"{stem}.png", f"{stem}.pdf"]
    assert_figure_files(written)


def test_figures_leave_global_state_alone(tmp_path: Path) -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    figures.plot_model_size([make_summary()], tmp_path / "m")
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend().lower() == "agg"


def test_pdf_is_reproducible(tmp_path: Path) -> None:
    s = [make_summary()]
    a = figures.plot_accuracy_vs_sparsity(s, tmp_path / "a")
    b = figures.plot_accuracy_vs_sparsity(s, tmp_path / "b")
    assert a[1].read_bytes() == b[1].read_bytes()
    assert a[0].read_bytes() == b[0].read_bytes()


# ----------------------------------------------------------------------------------------------------
# Stage


def test_build_stage(tmp_path: Path) -> None:
    paths = []
    for s in grid(["mnist-sample"], [0.5, 0.7], [0, 1, 2]):
        p = tmp_path / "cells" / f"{s['dataset']}_{s['pruning_rate']}_{s['seed']}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(s), encoding="utf-8")
        paths.append(str(p))
    report_stage.build(paths, str(tmp_path / "tables"), str(tmp_path / "figures"))
    names = {p.name for p in (tmp_path / "tables").iterdir()}
    assert names == {"cells.csv", "cells.md", "by_rate.csv", "by_rate.md"}
    assert len(pd.read_csv(tmp_path / "tables" / "cells.csv")) == 6
    by_rate = pd.read_csv(tmp_path / "tables" / "by_rate.csv")
    assert list(by_rate["n_seeds"]) == [3, 3]
    assert len(list((tmp_path / "figures").glob("*.png"))) == len(figures.FIGURES)
    assert len(list((tmp_path / "figures").glob("*.pdf"))) == len(figures.FIGURES)
