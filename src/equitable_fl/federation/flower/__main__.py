"""``python -m equitable_fl.federation.flower node-config --clients … --partition … --prepared … --meta …
--client K``: the ``--node-config`` value that makes a SuperNode client K of a pipeline's fleet (its
profile from ``clients.json``, its data from the prepared dataset and ``partition.json``)."""

from __future__ import annotations

import argparse
import sys

from equitable_fl import io
from equitable_fl.federation.flower.node import node_config_line
from equitable_fl.resources import profiles_from_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m equitable_fl.federation.flower")
    sub = parser.add_subparsers(dest="command", required=True)
    nc = sub.add_parser("node-config", help="print a SuperNode's --node-config for one client")
    nc.add_argument("--clients", required=True, help="clients.json of the cell (profiles)")
    nc.add_argument("--partition", required=True, help="partition.json of the cell")
    nc.add_argument("--prepared", required=True, help="the prepared dataset (prepared.npz)")
    nc.add_argument("--meta", required=True, help="its meta.json")
    nc.add_argument("--client", type=int, required=True, help="client id")
    args = parser.parse_args(argv)
    profiles = profiles_from_json(io.read_json(args.clients)["clients"])
    if not 0 <= args.client < len(profiles):
        parser.error(f"--client {args.client}: {args.clients} has clients 0…{len(profiles) - 1}")
    print(node_config_line(profiles[args.client], args.prepared, args.meta, args.partition))
    return 0


if __name__ == "__main__":
    sys.exit(main())
