"""The ClientApp of a phase: a SuperNode trains the masked ticket on its own samples.

``query`` (once per run): keep the phase's set-up (model spec, execution, threads, mask) in the node's
``context.state`` and answer who this node is (:mod:`.node`). It loads neither PyTorch nor data, so a
node answers fast.

``train`` (each round the node is in the cohort): decode the global weights, run the task with
:func:`equitable_fl.federation.client.train_client` — the very function the in-process engine calls,
with the task's seed — and reply with the encoded update. Flower starts a new ``flwr-clientapp``
process for every message, so the node's data is loaded per message (small next to a round's polling).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from equitable_fl.federation.flower.node import identify

app = ClientApp()

SETUP = "equitable-fl-setup"


@app.query()
def query(msg: Message, context: Context) -> Message:
    context.state[SETUP] = msg.content["setup"]
    identity = identify(context.node_config)
    return Message(RecordDict({"identity": ConfigRecord(identity.to_record())}), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    import torch

    from equitable_fl.allocator import retain_freed_memory
    from equitable_fl.federation.client import MaskedParams, train_client
    from equitable_fl.federation.execution import Execution
    from equitable_fl.federation.flower import job as jobfiles
    from equitable_fl.federation.flower import wire
    from equitable_fl.federation.flower.node import load_node_data
    from equitable_fl.modelspec import ModelSpec

    if SETUP not in context.state:
        raise RuntimeError("a train message before the run's set-up query: this node joined the run late")
    setup = context.state[SETUP]
    identity = identify(context.node_config)
    task = wire.task_from(msg.content["config"])
    if task.client != identity.client:
        raise RuntimeError(f"a task for client {task.client} reached the node of client {identity.client}")
    retain_freed_memory()  # once per ClientApp process, as in an in-process training job
    torch.set_num_threads(identity.threads or int(setup["threads"]))
    if identity.data is None:  # a simulated node: the job's data
        data, indices = jobfiles.read_data(Path(str(context.run_config["job"])), identity.client)
    else:
        data, indices = load_node_data(identity)
    options = json.loads(str(setup["execution"]))
    execution = Execution.resolve(options["precision"], bool(options["channels_last"]), torch.device("cpu"))
    mask = wire.mask_from_bytes(bytes(setup["mask"]))
    model = execution.prepare(ModelSpec.from_dict(json.loads(str(setup["model-spec"]))).build())
    state, _ = wire.unpack(msg.content["arrays"])
    t0 = time.perf_counter()
    update = train_client(model, state, MaskedParams(model, mask), data, indices, task, execution)
    seconds = time.perf_counter() - t0
    reply = RecordDict(
        {"arrays": wire.pack(update.state, mask), "metrics": wire.reply_metrics(update, seconds)}
    )
    return Message(reply, reply_to=msg)
