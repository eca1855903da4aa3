"""Per-session analysis of landmarks after inference (smoothing, rig, fitness land here).

Pure code over arrays and timestamps: nothing in this package imports aiohttp.
"""
