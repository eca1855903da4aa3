"""Landmarks rounded as they are sent: x, y and z to 5 decimals, the pose's visibility to 4.

A frame's plain result (engine/wire.py) and its session's analysed one (analysis/avatar.py)
both round here, once, from the model's own numbers, so the two read the same digit for
digit: a visibility rounded to 5 decimals and then to 4 can differ from one rounded to 4.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

JsonPart = list[list[float]]
# The face mesh the protocol sends. A refined mesh's ten iris points follow these: the rig
# and the blendshapes read them, the protocol has never carried them.
FACE_POINTS = 468


def json_part(part: NDArray[np.float64] | None) -> JsonPart | None:
    """New rows, rounded; a fourth column, where there is one, is the pose's visibility."""
    if part is None:
        return None
    out = np.round(part, 5)
    if part.shape[1] > 3:
        out[:, 3] = np.round(part[:, 3], 4)
    rows: JsonPart = out.tolist()
    return rows


def json_landmarks(parts: Mapping[str, NDArray[np.float64] | None]) -> dict[str, JsonPart | None]:
    """The result's "landmarks": each part json_part()'s, the face without its irises."""
    return {
        name: json_part(part if name != "face" or part is None else part[:FACE_POINTS])
        for name, part in parts.items()
    }
