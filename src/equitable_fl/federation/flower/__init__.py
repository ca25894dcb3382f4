"""``compute.engine: flower``: each phase's Equitable-FL strategy run on a Flower federation (flwr 1.41).

- :mod:`.engine` (the training job's side): writes the job folder, runs ``flwr run``, reads the result.
- :mod:`.launch`: the Flower App (a generated ``pyproject.toml``), ``flwr run`` and the run's status.
- :mod:`.job`: the files between the training job and the ServerApp.
- :mod:`.server_app` / :mod:`.server`: the ServerApp; a ``FedAvg`` subclass that delegates cohorts,
  masked aggregation and accounting to :class:`~equitable_fl.federation.strategy.EquitableStrategy`.
- :mod:`.client_app`: the ClientApp; trains with :func:`~equitable_fl.federation.client.train_client`.
- :mod:`.node`: a SuperNode's identity, resources and data from its node config.
- :mod:`.wire`: message contents; weights travel as the project's sparse-codec payloads.

Only the ServerApp and ClientApp modules import ``flwr``; the training job talks to Flower through its
command line, so the project imports (and the in-process engine runs) without Flower.
``python -m equitable_fl.federation.flower node-config …`` prints a SuperNode's ``--node-config`` for a
client of a simulated fleet. The README's "Run on real devices with Flower" has the commands.
"""
