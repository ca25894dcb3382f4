"""Tests of :mod:`equitable_fl.federation`: the strategy on its own, the client, and the engine."""
