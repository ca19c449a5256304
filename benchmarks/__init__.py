"""Benchmarks: wall time and peak memory of the reduction (``make bench``)."""
