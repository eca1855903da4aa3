"""The avatar rig: MediaPipe landmarks to VRM 1.0 bone rotations and expressions."""

from webapp.analysis.rig.bones import BONES
from webapp.analysis.rig.face import EXPRESSIONS
from webapp.analysis.rig.solve import Rig, mirrored, solve, to_rig_space

__all__ = ["BONES", "EXPRESSIONS", "Rig", "mirrored", "solve", "to_rig_space"]
