"""Pure analysis of landmarks: smoothing, the avatar rig, fitness. Nothing here imports aiohttp."""
