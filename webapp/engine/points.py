"""MediaPipe's landmark lists as float arrays, read out of their serialised bytes.

Reading x, y and z off each landmark message goes through the protobuf runtime three times
a point: 0.7 ms a Holistic frame (a refined face alone is 478 points). Serialising each list
once, in C, and viewing its floats with numpy took 0.13 ms. The bytes are checked for the
one layout read here; anything else takes the slow way, which gives the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from webapp.engine.wire import PartArray

# A list's landmarks are its field 1, each a length-delimited record of x, y, z,
# visibility, presence (fields 1-5), every one a 32-bit float: a tag byte and 4 bytes.
_LANDMARK_TAG = 0x0A
_FLOAT_TAGS = (0x0D, 0x15, 0x1D, 0x25, 0x2D)
_FIELD_BYTES = 5


def part_array(landmarks: Any, columns: int) -> PartArray | None:
    """The first `columns` of x, y, z, visibility of each point in a (Normalized)LandmarkList,
    as float64 rows; None for None."""
    if landmarks is None:
        return None
    points = landmarks.landmark
    fast = _from_bytes(landmarks.SerializeToString(), len(points), columns)
    if fast is not None:
        return fast
    if columns == 4:
        rows: list[tuple[float, ...]] = [(p.x, p.y, p.z, p.visibility) for p in points]
    else:
        rows = [(p.x, p.y, p.z) for p in points]
    return np.array(rows, dtype=np.float64).reshape(-1, columns)


def _from_bytes(data: bytes, count: int, columns: int) -> PartArray | None:
    """The floats of `count` landmark records that all carry the same leading float fields,
    in field order; None when the bytes are laid out any other way."""
    if count == 0 or len(data) < 2:
        return None
    length = data[1]
    fields, rest = divmod(length, _FIELD_BYTES)
    size = 2 + length
    if rest or not columns <= fields <= len(_FLOAT_TAGS) or len(data) != count * size:
        return None
    # A field missing from one record would shift every byte after it: each record's tag,
    # length and field tags are checked, a strided slice for each position.
    checks = [(0, _LANDMARK_TAG), (1, length)]
    checks += [(2 + k * _FIELD_BYTES, _FLOAT_TAGS[k]) for k in range(fields)]
    for offset, byte in checks:
        if data[offset::size] != bytes((byte,)) * count:
            return None
    floats: NDArray[np.float32] = np.ndarray(
        (count, columns), dtype="<f4", buffer=data, offset=3, strides=(size, _FIELD_BYTES)
    )
    return floats.astype(np.float64)
