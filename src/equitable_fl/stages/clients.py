"""Steps that set up the simulated clients: data partition, resources, tiers, devices."""

from __future__ import annotations

import csv
import io as _io
from typing import Any

from equitable_fl import io
from equitable_fl.data.prepared import load_prepared
from equitable_fl.partition import make_partition, partition_report, to_json
from equitable_fl.resources import build_profiles


def partition(npz: str, meta: str, seed: int, cfg: dict[str, Any], out_json: str, out_report: str) -> None:
    """Split the training set over ``cfg['count']`` clients and write the per-client report (CSV)."""
    ds = load_prepared(npz, meta)
    part_cfg = dict(cfg["partition"])
    method = part_cfg.pop("method")
    parts = make_partition(ds.y_train, int(cfg["count"]), int(seed), method, **part_cfg)
    report = partition_report(ds.y_train, parts, ds.num_classes)
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["client", "samples", "classes", *[f"class_{n}" for n in ds.class_names]])
    for row in report:
        writer.writerow([row["client"], row["samples"], row["classes"], *row["class_counts"]])
    io.write_json(out_json, {"method": method, "seed": int(seed), "clients": to_json(parts)})
    io.write_text(out_report, buf.getvalue())


def profiles(seed: int, cfg: dict[str, Any], out_json: str) -> None:
    """Draw every client's resources, score and tier, and its device in units for the simulated clock.

    The device classes used (``resources.devices``) are written beside the clients, so that the training
    and summary steps read the units and ``sparse_kernels`` from the file they already depend on.
    """
    rows = build_profiles(int(cfg["count"]), int(seed), cfg["resources"], cfg["tiers"])
    tiers = sorted({p.tier for p in rows})
    devices = cfg["resources"].get("devices")
    io.write_json(
        out_json,
        {
            "seed": int(seed),
            "tier_sizes": {str(t): sum(p.tier == t for p in rows) for t in tiers},
            **({} if devices is None else {"devices": devices}),
            "clients": [p.as_dict() for p in rows],
        },
    )
