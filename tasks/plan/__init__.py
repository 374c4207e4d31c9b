"""The plan stage: read and check a screenplay, then decide every sequence, chain and cue
before any GPU time is spent. Pure functions over `tasks.schema`; no GPU, no store.
"""
