"""A real sparse wire format for model weights, used to count bytes stored and communicated.

Each tensor is sent either dense (fp32 values) or, when that is smaller, as a bitmask of the kept
positions plus the fp32 values at those positions. The encoder picks per tensor, so a dense model
costs no more than fp32 storage; the byte counts reported by the pipeline are lengths of actual
encodings that :func:`decode` turns back into the same tensors.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping

import numpy as np
import torch

_MAGIC = b"EQFL1"


def encode(state: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor]) -> bytes:
    header: list[dict[str, object]] = []
    chunks: list[bytes] = []
    for name in sorted(state):
        values = state[name].detach().cpu().to(torch.float32).numpy().ravel()
        keep = mask.get(name)
        entry: dict[str, object] = {"name": name, "shape": list(state[name].shape)}
        if keep is not None:
            keep_np = keep.cpu().numpy().ravel().astype(bool)
            values = np.where(keep_np, values, np.float32(0))  # pruned means 0 in either format
            bits = np.packbits(keep_np)
            kept = values[keep_np]
            if bits.nbytes + kept.nbytes < values.nbytes:
                entry["format"] = "bitmask"
                chunks += [bits.tobytes(), kept.astype("<f4").tobytes()]
                entry["nbytes"] = [bits.nbytes, kept.nbytes]
                header.append(entry)
                continue
        entry["format"] = "dense"
        entry["nbytes"] = [values.nbytes]
        chunks.append(values.astype("<f4").tobytes())
        header.append(entry)
    head = json.dumps(header, separators=(",", ":")).encode()
    return _MAGIC + struct.pack("<I", len(head)) + head + b"".join(chunks)


def decode(blob: bytes) -> dict[str, torch.Tensor]:
    """Inverse of :func:`encode`; any malformed payload raises ``ValueError``."""
    if not blob.startswith(_MAGIC):
        raise ValueError("not an equitable-fl sparse payload")
    try:
        out, end = _decode(blob)
    except (struct.error, TypeError, KeyError, IndexError, json.JSONDecodeError) as exc:
        raise ValueError(f"corrupt equitable-fl sparse payload: {exc}") from exc
    if end != len(blob):
        raise ValueError(f"corrupt equitable-fl sparse payload: {len(blob) - end} trailing bytes")
    return out


def _decode(blob: bytes) -> tuple[dict[str, torch.Tensor], int]:
    (head_len,) = struct.unpack_from("<I", blob, len(_MAGIC))
    pos = len(_MAGIC) + 4
    header = json.loads(blob[pos : pos + head_len])
    if not isinstance(header, list):
        raise TypeError("header is not a list of tensors")
    pos += head_len
    out: dict[str, torch.Tensor] = {}
    for entry in header:
        shape = tuple(entry["shape"])
        numel = int(np.prod(shape)) if shape else 1
        if entry["format"] == "dense":
            (n,) = entry["nbytes"]
            values = np.frombuffer(blob, dtype="<f4", count=n // 4, offset=pos).copy()
            pos += n
        else:
            nbits, nvals = entry["nbytes"]
            keep = np.unpackbits(np.frombuffer(blob, dtype=np.uint8, count=nbits, offset=pos))[:numel]
            pos += nbits
            values = np.zeros(numel, dtype=np.float32)
            values[keep.astype(bool)] = np.frombuffer(blob, dtype="<f4", count=nvals // 4, offset=pos)
            pos += nvals
        out[entry["name"]] = torch.from_numpy(values.reshape(shape))
    return out, pos


def encoded_size(state: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor]) -> int:
    return len(encode(state, mask))
