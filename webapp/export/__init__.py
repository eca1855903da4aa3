"""Recordings out: a JSON-lines recording (from a page's Record button or POST /api/video)
as BVH, CSV or a real-time VMC replay. Pure code: nothing here imports aiohttp."""
