"""Inside a phase: the Equitable-FL strategy (policy) and the engines that execute it.

- :mod:`.strategy`: :class:`PhasePlan` (what the phase is) and :class:`EquitableStrategy` (admitted tiers,
  eligibility against the phase model's cost, seeded cohort from eligible ∩ available, masked
  sample-weighted FedAvg, per-round accounting; hooks for availability and simulated time).
- :mod:`.client`: a client's work (``train_client`` → ``local_train``) and the server's ``evaluate``.
- :mod:`.engine`: engines by name (``compute.engine``); ``inprocess`` simulates the clients in the job.

How a Flower (Message API) deployment maps onto it, without copying any logic:

==================================  ==============================================================
Flower                              equitable-fl
==================================  ==============================================================
``ServerApp`` main                  build the ``PhasePlan`` and ``EquitableStrategy`` as the stage does
strategy ``configure_train``        ``strategy.configure_round(r, available=connected node ids)``; one
                                    ``Message`` per ``ClientTask`` (seed, settings in a
                                    ``ConfigRecord``; weights as the sparse codec's payload)
``ClientApp`` ``@app.train``        decode weights, ``train_client(model, state, masked, data, idx, task)``,
                                    reply with the update and ``num-examples``
strategy ``aggregate_train``        ``strategy.aggregate(updates, current)`` then ``strategy.account(...)``
``evaluate_fn`` (server side)       ``client.evaluate(model, state, data, batch)``
node config (SuperNode)             the node's ``ClientProfile`` (compute, storage, bandwidth, tier)
==================================  ==============================================================
"""
