"""Pixel formats that PIL converts to 8-bit RGB badly, as the server decodes them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from webapp.engine.imaging import decode


def tiff(values: list[list[float]]) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.array(values, dtype=np.float32)).save(out, "TIFF")
    return out.getvalue()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # 0 to 1, as float images hold it: 0.8 was clipped to 0, a black picture.
        ([[0.0, 0.5], [0.8, 1.0]], [[0, 127], [204, 255]]),
        # Wider than 1: scaled to the brightest, as 16-bit images are.
        ([[0.0, 100.0], [200.0, 400.0]], [[0, 63], [127, 255]]),
        # Nothing above 0 (and no number at all) is black, not inverted to white.
        ([[-1.0, -0.5], [-2.0, -0.25]], [[0, 0], [0, 0]]),
        ([[-1.0, float("nan")], [-2.0, -0.25]], [[0, 0], [0, 0]]),
        ([[float("inf"), 0.5], [float("-inf"), 1.0]], [[0, 127], [0, 255]]),
    ],
)
def test_a_float_image_is_scaled_to_8_bits(
    values: list[list[float]], expected: list[list[int]]
) -> None:
    rgb = decode(tiff(values), max_pixels=100)
    assert rgb.dtype == np.uint8
    assert rgb.shape == (2, 2, 3)
    assert rgb[..., 0].tolist() == expected
    assert (rgb[..., 0] == rgb[..., 2]).all()
