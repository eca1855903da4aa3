"""Pure analysis of landmarks, per live session: smoothing, the avatar rig and fitness.

Arrays and timestamps in, values out; nothing here knows aiohttp or MediaPipe.
"""

from webapp.analysis.avatar import AvatarOptions, AvatarSession
from webapp.analysis.rig import Rig, mirrored, solve
from webapp.analysis.smoothing import LandmarkSmoother, OneEuroFilter, SmoothingSettings

__all__ = [
    "AvatarOptions",
    "AvatarSession",
    "LandmarkSmoother",
    "OneEuroFilter",
    "Rig",
    "SmoothingSettings",
    "mirrored",
    "solve",
]
