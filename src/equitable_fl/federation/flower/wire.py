"""What travels in the Flower messages of a phase, and how it is packed.

- Weights, both ways: an ``ArrayRecord`` holding one ``Array`` whose bytes are the project's sparse-codec
  payload (:mod:`equitable_fl.sparse_codec`; ``stype`` names it). What Flower sends is the encoded model,
  so a round's ``bytes_down``/``bytes_up`` are lengths of the payloads that really went out and came back.
- The set-up (the query message that opens a run): model spec, execution, threads and the ticket's mask,
  bit-packed; a node keeps it in its ``context.state`` for the run's train messages.
- A round's task (the train message's ``ConfigRecord``): client, round, seed, training settings.
- A client's reply: the update as weights plus a ``MetricRecord`` (``num-examples``, ``train-loss``,
  ``train-seconds``, ``client-id``).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord

from equitable_fl import sparse_codec
from equitable_fl.config import TrainSettings
from equitable_fl.federation.client import ClientTask, ClientUpdate, State

STYPE = "equitable-fl/sparse-codec"
WEIGHTS = "weights"


def pack(state: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor]) -> ArrayRecord:
    blob = sparse_codec.encode(state, mask)
    return ArrayRecord({WEIGHTS: Array(dtype="uint8", shape=(len(blob),), stype=STYPE, data=blob)})


def unpack(record: ArrayRecord) -> tuple[State, int]:
    """The weights of a message and the length of their encoded payload."""
    array = record[WEIGHTS]
    if array.stype != STYPE:
        raise ValueError(f"weights packed as {array.stype!r}, expected the equitable-fl sparse codec")
    return sparse_codec.decode(array.data), len(array.data)


def payload_size(record: ArrayRecord) -> int:
    return len(record[WEIGHTS].data)


# -- the ticket's mask, bit-packed --------------------------------------------------------------------


def mask_bytes(mask: Mapping[str, torch.Tensor]) -> bytes:
    names = sorted(mask)
    head = json.dumps([[n, list(mask[n].shape)] for n in names]).encode()
    bits = [np.packbits(mask[n].cpu().numpy().ravel().astype(bool)).tobytes() for n in names]
    return struct.pack("<I", len(head)) + head + b"".join(bits)


def mask_from_bytes(blob: bytes) -> dict[str, torch.Tensor]:
    (n,) = struct.unpack_from("<I", blob)
    pos, out = 4 + n, {}
    for name, shape in json.loads(blob[4 : 4 + n]):
        numel = int(np.prod(shape)) if shape else 1
        size = (numel + 7) // 8
        bits = np.unpackbits(np.frombuffer(blob, dtype=np.uint8, count=size, offset=pos))[:numel]
        out[name] = torch.from_numpy(bits.astype(bool).reshape(shape))
        pos += size
    if pos != len(blob):
        raise ValueError(f"corrupt mask payload: {len(blob) - pos} trailing bytes")
    return out


def setup_record(spec: dict[str, Any], execution: dict[str, Any], threads: int, mask: bytes) -> ConfigRecord:
    return ConfigRecord(
        {"model-spec": json.dumps(spec), "execution": json.dumps(execution), "threads": threads, "mask": mask}
    )


# -- tasks and replies --------------------------------------------------------------------------------


def task_record(task: ClientTask) -> ConfigRecord:
    return ConfigRecord(
        {
            "client-id": task.client,
            "round": task.round,
            "seed": str(task.seed),  # 63-bit: kept exact as text
            "settings": json.dumps(task.settings.as_dict()),
        }
    )


def task_from(record: ConfigRecord) -> ClientTask:
    return ClientTask(
        int(record["client-id"]),
        int(record["round"]),
        int(str(record["seed"])),
        TrainSettings.from_config(json.loads(str(record["settings"]))),
    )


def reply_metrics(update: ClientUpdate, seconds: float) -> MetricRecord:
    return MetricRecord(
        {
            "num-examples": update.num_examples,
            "train-loss": update.train_loss,
            "train-seconds": seconds,
            "client-id": update.client,
        }
    )


def update_from(arrays: ArrayRecord, metrics: MetricRecord) -> tuple[ClientUpdate, int, float]:
    """A client's update, the length of its payload, and its measured training seconds."""
    state, nbytes = unpack(arrays)
    update = ClientUpdate(
        int(metrics["client-id"]), state, float(metrics["num-examples"]), float(metrics["train-loss"])
    )
    return update, nbytes, float(metrics["train-seconds"])
