"""ARKit face blendshapes from the Holistic face mesh, by MediaPipe's own blendshapes model.

The legacy Holistic graph has no blendshapes; FaceLandmarker computes them from its mesh with
face_blendshapes.tflite, a small model of the landmarks alone, which we run here on ours
(models/PROVENANCE.md says where the file comes from). It needs the refined mesh: 468 points
and the 10 iris points after them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

MODEL = Path(__file__).with_name("models") / "face_blendshapes.tflite"
MESH_POINTS = 478

# The model's interface, copied from MediaPipe's FaceBlendshapesGraph
# (mediapipe/tasks/cc/vision/face_landmarker/face_blendshapes_graph.cc, google-ai-edge/mediapipe):
# kLandmarksSubsetIdxs, the mesh points it reads in this order, and kBlendshapeNames, what its
# 52 outputs are. The model was trained on exactly these, so neither may be reordered.
SUBSET = np.array([
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39,
    40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80,
    81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133,
    136, 144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160,
    161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246,
    249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295,
    296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334,
    336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382,
    384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454,
    466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
])  # fmt: skip
# Output 0 is "_neutral", which MediaPipe says to ignore: NAMES are outputs 1 to 51.
NAMES: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)  # fmt: skip


class BlendshapeModel:
    """One loaded model. Not thread-safe: the interpreter holds its tensors between calls, so
    an instance belongs to one thread (a worker process makes its own)."""

    def __init__(self, model: Path = MODEL) -> None:
        # Imported here, not with the module: every worker imports this module, and most
        # never serve a session that asks (the runtime takes 0.2 s and a few MB to load).
        from ai_edge_litert.interpreter import Interpreter

        # One thread: the worker pool already gives each process a core of its own.
        self._interpreter = Interpreter(model_path=str(model), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def __call__(self, mesh: NDArray[np.float64], width: int, height: int) -> NDArray[np.float64]:
        """The 51 coefficients in NAMES' order, each 0..1, from the refined face mesh: (478, 3)
        normalised x, y, z as Holistic gives them (face, then irises), and the frame's size."""
        if mesh.ndim != 2 or mesh.shape[0] < MESH_POINTS or mesh.shape[1] < 2:
            raise ValueError(f"need the refined mesh with irises, {MESH_POINTS} rows: {mesh.shape}")
        # As MediaPipe's LandmarksToTensorCalculator feeds it: x and y in pixels, z unused.
        points = mesh[SUBSET, :2] * (float(width), float(height))
        self._interpreter.set_tensor(self._input, points[np.newaxis].astype(np.float32))
        self._interpreter.invoke()
        scores: NDArray[np.float32] = self._interpreter.get_tensor(self._output)
        # The model ends in a sigmoid; the clip keeps the promise should a new file not.
        return np.clip(scores[1:].astype(np.float64), 0.0, 1.0)
