"""Tests of :mod:`equitable_fl.stages` run from Python, as the Snakemake adapters call them."""
