"""Benchmarks of onestop (``make bench`` / ``python -m bench``); see bench/README.md."""
