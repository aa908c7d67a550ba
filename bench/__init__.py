"""Benchmark of the CPMS pipeline: `python -m bench` (or `make bench`) prints a JSON report."""
