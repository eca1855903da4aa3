"""Blinks on the avatar: a real blink (the real model over media/) shows on the frame it
happens and is over when the eye opens, smoothing on; the values' own filter."""

from __future__ import annotations

import numpy as np
import pytest

from bench.expressions import measured
from bench.recordings import FloatArray, Recording
from tests.landmarks import BLINK_FROM, BLINK_SHUT, blink, noisy_still
from webapp.analysis import AvatarOptions
from webapp.analysis.expression_smoothing import ValueSmoother

SIDES = ("blinkLeft", "blinkRight")


def session_blinks(rec: Recording, options: AvatarOptions) -> FloatArray:
    """(frames, 2): blinkLeft and blinkRight of a live session over the recording."""
    m = measured(rec, options)
    assert len(m["frame"]) == len(rec)  # a face and a rig on every frame
    return np.stack([m[k] for k in SIDES], axis=1)


def openings(rec: Recording) -> FloatArray:
    """(frames, 2): the model's own eye openings, left and right."""
    m = measured(rec, AvatarOptions(rig=True, smoothing=None))
    assert len(m["frame"]) == len(rec)
    return -np.stack([m[f"ref {k}"] for k in SIDES], axis=1)


def test_a_real_blink_shows_at_once_and_ends_with_it_smoothing_on() -> None:
    rec = blink()
    shut = [i - BLINK_FROM for i in BLINK_SHUT]
    opened = openings(rec)
    # The model sees the blink: the eyes measure a third of their usual opening or less.
    assert np.all(opened[shut[0]] < np.median(opened, axis=0) / 3)
    smooth = session_blinks(rec, AvatarOptions(rig=True))
    raw = session_blinks(rec, AvatarOptions(rig=True, smoothing=None))
    # On the first shut frame, not a frame or two later (the landmarks' filter gave 0.49).
    assert np.all(smooth[shut[0]] > 0.8)
    assert np.all(smooth[shut[1]] > 0.9)
    # Over when the eye is open again: three frames after the last shut one, the avatar's
    # eyes are as open as the unsmoothed session's, give or take a tenth.
    after = shut[-1] + 3
    assert np.all(opened[after] > np.median(opened, axis=0) * 0.85)
    assert np.all(np.abs(smooth[after] - raw[after]) < 0.1)
    # Open eyes before the blink read as open.
    assert np.all(np.median(smooth[: shut[0]], axis=0) < 0.3)


def test_the_expression_filter_damps_an_open_eyes_flicker() -> None:
    rec = noisy_still()  # one real frame repeated with camera noise: nothing moves
    raw = session_blinks(rec, AvatarOptions(rig=True, smoothing=None))[30:]
    smooth = session_blinks(rec, AvatarOptions(rig=True))[30:]
    assert np.all(np.std(raw, axis=0) > 0.02)  # there is a flicker to remove
    assert np.all(np.std(smooth, axis=0) < 0.85 * np.std(raw, axis=0))


def test_a_value_step_passes_in_a_frame_and_noise_is_damped() -> None:
    f = ValueSmoother()
    rng = np.random.default_rng(3)
    still = [f({"a": 0.1 + float(rng.normal(0, 0.03)), "b": 0.0}, t * 33.3)["a"] for t in range(60)]
    assert np.std(still[10:]) < 0.75 * 0.03
    first = f({"a": 1.0, "b": 0.0}, 60 * 33.3)
    assert first["a"] > 0.75
    assert f({"a": 1.0, "b": 0.0}, 61 * 33.3)["a"] > 0.95
    assert first["b"] == 0.0


def test_values_stay_in_range_and_new_names_start_afresh() -> None:
    f = ValueSmoother()
    for t in range(5):
        out = f({"a": 1.0}, t * 33.3)
    assert out == {"a": pytest.approx(1.0)}
    out = f({"a": 0.0, "z": 0.5}, 5 * 33.3)  # a different set: no history carried over
    assert out == {"a": 0.0, "z": 0.5}
    f.reset()
    assert f({"a": 0.2, "z": 0.5}, 6 * 33.3) == {"a": pytest.approx(0.2), "z": 0.5}
    # As many names, in another order or renamed: no history carried across names either.
    assert f({"z": 0.9, "a": 0.8}, 7 * 33.3) == {"z": 0.9, "a": 0.8}
    assert f({"y": 0.1, "b": 0.0}, 8 * 33.3) == {"y": 0.1, "b": 0.0}
    # A filter's overshoot never leaves 0..1.
    for t in range(9, 22):
        out = f({"a": float(t % 2), "z": 1.0 - float(t % 2)}, t * 33.3)
        assert all(0.0 <= v <= 1.0 for v in out.values())
