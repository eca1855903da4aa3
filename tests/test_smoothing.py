"""One Euro smoothing: settings, the filter's response (synthetic steps), and real landmarks
(the real model over media/)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from bench.avatar_quality import arm_jitter, jitter, smoothed
from bench.recordings import FloatArray
from tests.landmarks import asl, noisy_still
from webapp.analysis import AvatarOptions, AvatarSession, LandmarkSmoother, OneEuroFilter
from webapp.analysis.rig.face import IRIS_POINTS
from webapp.analysis.smoothing import MAX_GAP_MS, SmoothingSettings
from webapp.landmarks_json import FACE_POINTS, json_part


@pytest.mark.parametrize(
    "value",
    [
        {"min_cutoff": math.nan},
        {"min_cutoff": math.inf},
        {"min_cutoff": -1.0},
        {"min_cutoff": 0.0},
        {"beta": -0.1},
        {"beta": math.nan},
        {"d_cutoff": 1e9},
        {"min_speed": -0.1},
        {"min_speed": math.inf},
        {"beta": "1"},
        {"beta": True},
        {"speed": 1.0},
        "on",
        1.0,
        [],
    ],
)
def test_bad_settings_are_refused_with_a_reason(value: object) -> None:
    with pytest.raises(ValueError, match="smoothing"):
        SmoothingSettings.from_hello(value)


def test_hello_values() -> None:
    assert SmoothingSettings.from_hello(None) == SmoothingSettings()
    assert SmoothingSettings.from_hello("off") is None
    assert SmoothingSettings.from_hello({"min_cutoff": 2, "beta": 0}) == SmoothingSettings(2, 0)
    paper = SmoothingSettings.from_hello({"min_cutoff": 1, "beta": 0.5, "min_speed": 0})
    assert paper == SmoothingSettings(1, 0.5, min_speed=0.0)
    assert AvatarOptions.from_hello({"rig": True, "mirror": True}).mirror
    assert AvatarOptions.from_hello({}).smoothing == SmoothingSettings()
    with pytest.raises(ValueError, match="rig"):
        AvatarOptions.from_hello({"rig": 1})
    with pytest.raises(ValueError, match="mirror"):
        AvatarOptions.from_hello({"mirror": "yes"})


def test_a_smoothing_field_given_as_null_keeps_its_default() -> None:
    given = {"min_cutoff": 0.05, "beta": 10, "d_cutoff": None, "min_speed": None}
    assert SmoothingSettings.from_hello(given) == SmoothingSettings(0.05, 10)
    assert SmoothingSettings.from_hello({"min_cutoff": None}) == SmoothingSettings()


def step(settings: SmoothingSettings, frames: int = 60, dt_ms: float = 1000 / 30) -> list[float]:
    """The filter's output when one point jumps from 0 to 1 image height on frame 1."""
    f = OneEuroFilter(settings)
    out = []
    for i in range(frames):
        x = np.array([[0.0 if i == 0 else 1.0, 0.0, 0.0]])
        out.append(float(f(x, i * dt_ms)[0, 0]))
    return out


def test_first_frame_passes_and_a_step_is_followed_monotonically() -> None:
    out = step(SmoothingSettings())
    assert out[0] == 0.0
    assert all(b >= a for a, b in itertools.pairwise(out))
    assert 0.0 < out[1] < 1.0
    assert out[-1] == pytest.approx(1.0, abs=0.01)


def test_beta_shortens_the_lag_and_min_cutoff_sets_the_still_smoothing() -> None:
    slow, fast = step(SmoothingSettings(1.0, 0.0)), step(SmoothingSettings(1.0, 10.0))
    assert fast[2] > slow[2]
    # With beta 0 it is an exponential filter: alpha = 1 / (1 + 1 / (2 pi fc dt)).
    alpha = 1.0 / (1.0 + 1.0 / (2.0 * math.pi * 1.0 / 30.0))
    assert slow[1] == pytest.approx(alpha)


def test_a_clock_that_stalls_goes_back_or_jumps_starts_afresh() -> None:
    f = OneEuroFilter(SmoothingSettings())
    f(np.zeros((1, 3)), 0.0)
    f(np.zeros((1, 3)), 33.0)
    for t in (33.0, 10.0, 10.0 + MAX_GAP_MS + 1.0):
        x = np.full((1, 3), t)
        assert f(x, t) == pytest.approx(x)


def test_real_landmarks_keep_their_shape_and_visibility_and_never_overshoot() -> None:
    """Each output lies between the smallest and largest input since the part was found:
    the filter blends the previous output with the new input, it never extrapolates."""
    rec = asl()
    smoother = LandmarkSmoother(SmoothingSettings())
    lows: dict[str, FloatArray] = {}
    highs: dict[str, FloatArray] = {}
    for i in range(len(rec)):
        lm = rec.frame(i)
        out = smoother(lm, float(rec.capture_ms[i]), rec.width, rec.height)
        for part, raw in lm.items():
            got = out[part]
            if raw is None:
                assert got is None
                lows.pop(part, None)
                highs.pop(part, None)
                continue
            assert got is not None
            assert got.shape == raw.shape
            if part == "pose":
                assert np.array_equal(got[:, 3], raw[:, 3])
            lows[part] = np.minimum(lows.get(part, raw), raw)
            highs[part] = np.maximum(highs.get(part, raw), raw)
            assert np.all(got >= lows[part] - 1e-12)
            assert np.all(got <= highs[part] + 1e-12)


def test_a_hand_lost_and_found_again_is_not_smoothed_across_the_gap() -> None:
    rec = asl()
    missing = np.isnan(rec.right_hand[:, 0, 0])
    found_again = [i for i in range(1, len(rec)) if missing[i - 1] and not missing[i]]
    assert found_again, "the clip loses the signer's right hand and finds it again"
    smoother = LandmarkSmoother(SmoothingSettings())
    for i in range(len(rec)):
        lm = rec.frame(i)
        got, raw = (
            smoother(lm, float(rec.capture_ms[i]), rec.width, rec.height)["right_hand"],
            lm["right_hand"],
        )
        if raw is None:
            continue
        assert got is not None
        passed_through = np.allclose(got, raw, rtol=0.0, atol=1e-12)
        assert passed_through == (i in found_again or i == 0)


def test_each_part_is_smoothed_as_if_it_were_alone() -> None:
    """The parts share one filter call, not their states: the pose smoothed beside a face
    and hands that come and go is the pose smoothed alone, and so is each hand."""
    rec = asl()
    together = LandmarkSmoother(SmoothingSettings())
    alone = {part: LandmarkSmoother(SmoothingSettings()) for part in ("pose", "right_hand")}
    changes = 0
    before: set[str] = set()
    for i in range(len(rec)):
        lm = rec.frame(i)
        t = float(rec.capture_ms[i])
        found = {p for p, v in lm.items() if v is not None}
        changes += found != before
        before = found
        got = together(lm, t, rec.width, rec.height)
        for part, smoother in alone.items():
            only = {p: (v if p == part else None) for p, v in lm.items()}
            want = smoother(only, t, rec.width, rec.height)[part]
            if want is None:
                assert got[part] is None
            else:
                assert np.array_equal(got[part], want)  # type: ignore[arg-type]
    assert changes > 2, "the clip's parts come and go"


def test_the_default_halves_pose_and_face_jitter_on_a_still_person() -> None:
    """A real frame repeated with camera noise and JPEG: the spread over time of the
    shoulders, elbows, wrists and face mesh falls by more than half."""
    still = noisy_still()
    off, on = jitter(still), jitter(smoothed(still, SmoothingSettings()))
    assert on["face_px"] < 0.5 * off["face_px"]
    assert on["pose_px"] < 0.5 * off["pose_px"]


def test_the_smoothing_reaches_the_avatars_arms() -> None:
    """The body's bones come from pose_world: the session's settings calm them too, the
    smoother the setting the calmer (the avatar page's slider), the model's own when off."""
    still = noisy_still()
    off = arm_jitter(still, None)
    default = arm_jitter(still, SmoothingSettings())
    smoothest = arm_jitter(still, SmoothingSettings(0.001, 0.9))  # the slider's smooth end
    # 0.85 and 0.73 of off on 2026-12-05: the model smooths its world points itself, and
    # what is left is a slow wander.
    assert smoothest < default < 0.9 * off, (smoothest, default, off)


def wobble(settings: SmoothingSettings, amplitude: float, hz: float = 0.5) -> list[float]:
    """The filter's output for a point swaying sideways (image heights), 4 s at 30 fps,
    on a part one image height tall."""
    f = OneEuroFilter(settings)
    out = []
    for i in range(120):
        x = np.array([[amplitude * math.sin(2.0 * math.pi * hz * i / 30.0), 0.0, 0.0]])
        out.append(float(f(x, i * 1000.0 / 30.0)[0, 0]))
    return out


def test_speeds_under_min_speed_leave_the_cutoff_at_min_cutoff() -> None:
    """A sway slower than min_speed (here 0.003 heights at 0.5 Hz: under 0.01 heights/s)
    is filtered exactly as beta 0 would; a fast one still opens the cutoff."""
    gated = SmoothingSettings(0.05, 3.0, 4.0, min_speed=0.1)
    assert wobble(gated, 0.003) == pytest.approx(wobble(SmoothingSettings(0.05, 0.0, 4.0), 0.003))
    assert np.std(wobble(gated, 0.003)) < np.std(
        wobble(SmoothingSettings(0.05, 3.0, 4.0, 0), 0.003)
    )
    fast = wobble(gated, 0.3, hz=2.0)
    assert np.std(fast) > 0.8 * np.std(wobble(SmoothingSettings(0.05, 3.0, 4.0, 0), 0.3, 2.0))


def test_speed_is_in_the_parts_own_size_so_distance_does_not_matter() -> None:
    """The signer shrunk to half her size about the image centre (as if twice as far away)
    is smoothed into exactly her smoothed landmarks, shrunk the same way."""
    rec = asl()
    near, far = LandmarkSmoother(SmoothingSettings()), LandmarkSmoother(SmoothingSettings())
    centre = np.array([0.5, 0.5, 0.0])
    for i in range(len(rec)):
        lm = rec.frame(i)
        small = {
            k: None if v is None else np.c_[(v[:, :3] - centre) * 0.5 + centre, v[:, 3:]]
            for k, v in lm.items()
        }
        got_near = near(lm, float(rec.capture_ms[i]), rec.width, rec.height)
        got_far = far(small, float(rec.capture_ms[i]), rec.width, rec.height)
        for part, a in got_near.items():
            b = got_far[part]
            if a is None:
                assert b is None
                continue
            assert b is not None
            assert (b[:, :3] - centre) * 2.0 == pytest.approx(a[:, :3] - centre, abs=1e-9)


def test_session_off_returns_the_model_output_and_rig_on_request() -> None:
    rec = asl()
    off = AvatarSession(AvatarOptions(smoothing=None, rig=True))
    on = AvatarSession(AvatarOptions())
    for i in range(5):
        lm = {k: None if v is None else v.tolist() for k, v in rec.frame(i).items()}
        t = float(rec.capture_ms[i])
        got, rig = off.process(lm, t, rec.width, rec.height)
        for part, raw in lm.items():
            if raw is None:
                assert got[part] is None
            else:
                # The protocol's face is the mesh's first 468 points; the irises are the rig's.
                rows = FACE_POINTS if part == "face" else None
                assert got[part] == json_part(np.asarray(raw)[:rows])
        assert len(lm["face"] or []) == IRIS_POINTS
        assert len(got["face"] or []) == FACE_POINTS
        assert rig is not None
        assert set(rig) == {"bones", "hips_position", "expressions"}
        json.dumps(rig)
        _, no_rig = on.process(lm, t, rec.width, rec.height)
        assert no_rig is None


def test_after_a_gap_the_filter_follows_from_where_the_person_is_now() -> None:
    """A pause just over MAX_GAP_MS starts afresh at the new place (a small move, one the
    filter would otherwise barely follow), and the frames after it are smoothed from there,
    not pulled back towards where the person stood before the pause."""
    f = OneEuroFilter(SmoothingSettings())
    f(np.zeros((1, 3)), 0.0)
    f(np.zeros((1, 3)), 33.0)
    moved = np.full((1, 3), 0.01)
    kept = f(moved, 33.0 + MAX_GAP_MS)  # a pause of exactly MAX_GAP_MS is still smoothed
    assert np.all(kept < 0.005)
    f(np.zeros((1, 3)), 66.0 + MAX_GAP_MS)
    t = 66.0 + 2 * MAX_GAP_MS + 1.0
    assert np.array_equal(f(moved, t), moved)
    assert f(moved, t + 33.0) == pytest.approx(moved, abs=1e-12)
    # A camera that froze for a second: the avatar jumps to the person, it does not glide.
    f(np.zeros((1, 3)), t + 66.0)
    assert np.array_equal(f(moved, t + 1066.0), moved)


def test_a_vertical_move_opens_the_cutoff_as_a_sideways_one_does() -> None:
    """Speed is planar: a point stepping down (a squat) is followed as fast as one
    stepping sideways by the same distance."""
    sideways, down = OneEuroFilter(SmoothingSettings()), OneEuroFilter(SmoothingSettings())
    for i in range(10):
        d = 0.0 if i == 0 else 0.2
        a = sideways(np.array([[d, 0.0, 0.0]]), i * 33.0)
        b = down(np.array([[0.0, d, 0.0]]), i * 33.0)
        assert b[0, 1] == pytest.approx(a[0, 0], abs=1e-12)
    assert a[0, 0] > 0.19  # followed within the ten frames


def test_a_move_across_a_wide_frame_is_smoothed_as_the_same_move_down_it() -> None:
    """Points are in image heights whatever the frame's shape: on a 16:9 frame a hand
    moving 20 pixels a frame sideways lags by as many pixels as one moving 20 down."""
    width, height = 1280, 720
    square = np.array([[0, 0], [40, 0], [0, 40], [40, 40]], dtype=np.float64) + 300.0

    def lag_px(axis: int) -> float:
        smoother = LandmarkSmoother(SmoothingSettings())
        for i in range(6):
            px = square.copy()
            px[:, axis] += 20.0 * i
            norm = np.c_[px / [width, height], np.zeros(4)]
            got = smoother({"right_hand": norm}, i * 33.0, width, height)["right_hand"]
        assert got is not None
        return float(((norm - got)[:, :2] * [width, height])[0, axis])

    across, down = lag_px(0), lag_px(1)
    assert across > 0.5  # the filter lags at all
    assert across == pytest.approx(down, rel=1e-9)
