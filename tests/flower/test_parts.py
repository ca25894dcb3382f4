"""The Flower engine's parts that need no running federation: node configs, message contents, settings.

These start no Flower process (no ``flower`` marker): they run with the default tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from flwr.common.config import parse_config_args

from equitable_fl import sparse_codec
from equitable_fl.config import ComputeSettings
from equitable_fl.config.validate import SchemaError
from equitable_fl.federation.flower import wire
from equitable_fl.federation.flower.engine import FlowerEngine
from equitable_fl.federation.flower.node import NodeConfigError, identify, node_config_line
from equitable_fl.resources import ClientProfile

PROFILE = ClientProfile(4, 0.123456789012345, 1.6000000000000003, 0.7, 0.071234, 3)


def test_a_node_config_line_reads_back_the_exact_profile_through_flowers_parser(tmp_path: Path) -> None:
    line = node_config_line(PROFILE, str(tmp_path / "my data" / "p.npz"), "meta.json", "partition.json")
    identity = identify(parse_config_args([line]))  # what flower-supernode --node-config does with it
    assert identity.client == 4 and identity.tier == 3
    assert identity.profile(PROFILE) == PROFILE  # every float bit for bit
    assert identity.data is not None
    assert identity.data["prepared"] == str(tmp_path / "my data" / "p.npz")
    assert identity.data["meta"] == str(Path("meta.json").resolve())


def test_node_configs_that_do_not_say_enough_are_refused_naming_the_keys() -> None:
    with pytest.raises(NodeConfigError, match=r"lacks \['storage', 'bandwidth', 'tier', 'prepared'"):
        identify({"client-id": 1, "compute": 1.0, "meta": "m", "partition": "p"})
    with pytest.raises(NodeConfigError, match="positive"):
        identify(
            {"client-id": 1, "compute": 0.0, "storage": 1, "bandwidth": 1, "tier": 1}
            | {"prepared": "a", "meta": "m", "partition": "p"}
        )
    simulated = identify({"partition-id": 2, "num-partitions": 3})  # Flower's simulated node
    assert simulated.client == 2 and simulated.data is None and simulated.profile(PROFILE) is PROFILE


def test_weights_travel_as_the_sparse_codec_payload_and_masks_bit_packed() -> None:
    gen = torch.Generator().manual_seed(0)
    state = {"a.weight": torch.randn(3, 5, 7, generator=gen), "a.bias": torch.randn(3, generator=gen)}
    mask = {"a.weight": torch.rand(3, 5, 7, generator=gen) < 0.3}
    state["a.weight"][~mask["a.weight"]] = 0.0
    record = wire.pack(state, mask)
    back, nbytes = wire.unpack(record)
    assert nbytes == wire.payload_size(record) == sparse_codec.encoded_size(state, mask)
    assert all(torch.equal(back[k], state[k]) for k in state)
    odd = {"x": torch.rand(13, generator=gen) < 0.5, "y": torch.ones(2, 3, dtype=torch.bool)}
    unpacked = wire.mask_from_bytes(wire.mask_bytes(odd))
    assert unpacked.keys() == odd.keys() and all(torch.equal(unpacked[k], odd[k]) for k in odd)


def test_compute_flower_settings_reach_only_flower_jobs_and_need_a_connection() -> None:
    assert "flower" not in ComputeSettings.from_config({}).job()
    job = ComputeSettings.from_config({"engine": "flower", "flower": {"connection": "lab"}}).job()
    assert job["engine"] == "flower" and job["flower"]["connection"] == "lab"
    assert job["flower"]["runtime"] == "deployment"  # defaults filled from the schema
    with pytest.raises(SchemaError, match=r"compute\.flower\.connection: .*string"):
        ComputeSettings.from_config({"engine": "flower"})
    with pytest.raises(ValueError, match=r"needs compute\.flower\.connection"):
        FlowerEngine().run(_NoopStrategy(), None, {}, None, [])  # type: ignore[arg-type]


class _NoopStrategy:
    """Just enough of a strategy for the engine to reach its settings check."""

    def check_runnable(self) -> None:
        pass
