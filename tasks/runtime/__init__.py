"""What a run renders with: the media store, GPU slots, locks, caching rules, the GPU
scheduler and the studio that bundles them. No stage logic lives here.
"""
