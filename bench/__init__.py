"""Benchmarks of reelflow on the simulator: run `python -m bench.<name>` from the repo root."""
