"""A live session's analysis: its hello options and its smoothing state, one object each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from webapp.analysis.expression_smoothing import ValueSmoother
from webapp.analysis.rig import solve
from webapp.analysis.rig.calibration import EyeCalibration
from webapp.analysis.rig.emotion import Emotion, EmotionFader
from webapp.analysis.rig.hand_blend import HandBlend
from webapp.analysis.rig.straight_ahead import Rest, from_rest, head_in_chest
from webapp.analysis.smoothing import (
    PARTS,
    FloatArray,
    LandmarkSmoother,
    OneEuroFilter,
    SmoothingSettings,
    part_size,
)
from webapp.landmarks_json import JsonPart, json_landmarks

JsonLandmarks = dict[str, JsonPart | None]


@dataclass(frozen=True)
class AvatarOptions:
    """What a hello asks for: smoothing (None is "off"), a rig in each result, mirrored,
    ARKit's blendshapes in the rig."""

    smoothing: SmoothingSettings | None = field(default_factory=SmoothingSettings)
    rig: bool = False
    mirror: bool = False
    blendshapes: bool = False

    @classmethod
    def from_hello(cls, hello: Mapping[str, Any]) -> AvatarOptions:
        """Reads "smoothing", "rig", "mirror" and "blendshapes"; raises ValueError with the
        reason."""
        for name in ("rig", "mirror", "blendshapes"):
            if not isinstance(hello.get(name, False), bool):
                raise ValueError(f"{name} must be true or false")
        blendshapes = bool(hello.get("blendshapes", False))
        if blendshapes and hello.get("rig") is False:
            raise ValueError('blendshapes come inside the rig: leave out "rig": false')
        return cls(
            smoothing=SmoothingSettings.from_hello(hello.get("smoothing")),
            rig=bool(hello.get("rig", False)) or blendshapes,
            mirror=bool(hello.get("mirror", False)),
            blendshapes=blendshapes,
        )


class AvatarSession:
    """Turns each result's landmarks into smoothed landmarks and, if asked, a rig.

    Holds the smoothing filters, the eyes' calibration and the rest of head and gaze (their
    straight ahead, kept through reset()); call reset() when the session's tracking restarts. With
    smoothing on, the expressions are read from the unsmoothed face and filtered as values
    (expression_smoothing.py): the landmarks' filter would blur a blink; and a hand bone
    whose source changes is eased to the new one (rig/hand_blend.py).
    """

    def __init__(self, options: AvatarOptions, emotion: Emotion | None = None) -> None:
        """`emotion`: the one held from the first frame (see EmotionFader)."""
        self.options = options
        smoothing = options.smoothing
        self._smoother = None if smoothing is None else LandmarkSmoother(smoothing)
        # The body's bones are solved from pose_world: the same settings smooth it.
        self._world = None if smoothing is None else OneEuroFilter(smoothing)
        self._expressions = None if smoothing is None else ValueSmoother()
        self._blendshapes = None if smoothing is None else ValueSmoother()
        self._hands = None if smoothing is None else HandBlend()
        self._eyes = EyeCalibration()
        self._emotion = EmotionFader(emotion)
        self.rest: Rest | None = None  # straight ahead for head and gaze, once calibrated
        self._last: Rest | None = None  # the last rig's, for calibrate_now()

    def calibrate_now(self) -> Rest | None:
        """The last rig's head and gaze become straight ahead; returns them, or None when
        the last frame had no one in it (or no rig was asked for)."""
        if self._last is not None:
            self.rest = self._last
        return self._last

    def reset(self) -> None:
        self._eyes.reset()
        for f in (self._smoother, self._world, self._expressions, self._blendshapes, self._hands):
            if f is not None:
                f.reset()

    def process(
        self,
        landmarks: Mapping[str, ArrayLike | None],
        capture_ms: float,
        width: int,
        height: int,
        pose_world: ArrayLike | None = None,
        blendshapes: Mapping[str, float] | None = None,
        emotion: Emotion | None = None,
    ) -> tuple[JsonLandmarks, dict[str, Any] | None]:
        """(the result's "landmarks", its "rig" or None): JSON-ready, rounded as the model's
        own output is sent (landmarks_json.py). pose_world is used by the rig, smoothed
        as the landmarks are, when given; blendshapes (ARKit's, from the unsmoothed face)
        go into the rig, filtered like the expressions; `emotion`, the one the person
        holds (None: never one), joins the expressions, faded (rig/emotion.py)."""
        # Each part as an array once (the worker sends arrays; tests and tools may pass
        # lists): the filter and the rig's expressions both read the unsmoothed face.
        raw = {
            p: None if (a := landmarks.get(p)) is None else np.asarray(a, dtype=np.float64)
            for p in PARTS
        }
        parts = raw if self._smoother is None else self._smoother(raw, capture_ms, width, height)
        rig = None
        if self.options.rig:
            if blendshapes and self._blendshapes is not None:
                blendshapes = self._blendshapes(blendshapes, capture_ms)
            mirror, rest = self.options.mirror, self.rest
            solved = solve(
                parts,
                width,
                height,
                mirror=mirror,
                pose_world=self._smooth_world(pose_world, capture_ms),
                eyes=self._eyes,
                expression_face=raw["face"],
                blendshapes=blendshapes,
                gaze_rest=(0.0, 0.0) if rest is None or rest.gaze is None else rest.gaze,
            )
            if solved is not None and self._hands is not None:
                solved = self._hands(solved, capture_ms)
            head = None if solved is None else head_in_chest(solved.bones, mirror)
            self._last = None if solved is None or head is None else Rest(head, solved.gaze)
            if solved is not None and rest is not None:
                solved = replace(solved, bones=from_rest(solved.bones, rest.head, mirror))
            if solved is not None and self._expressions is not None:
                smooth = self._expressions(solved.expressions, capture_ms)
                solved = replace(solved, expressions=smooth)
            if solved is not None and (held := self._emotion(emotion, capture_ms)):
                solved = replace(solved, expressions=solved.expressions | held)
            rig = None if solved is None else solved.to_json()
        return json_landmarks(parts), rig

    def _smooth_world(self, pose_world: ArrayLike | None, capture_ms: float) -> FloatArray | None:
        """pose_world (metres) through its own filter, its speeds in its own size as the
        image parts' are; lost, its filter starts afresh when it is found again."""
        if pose_world is None:
            if self._world is not None:
                self._world.reset()
            return None
        world = np.asarray(pose_world, dtype=np.float64)
        if self._world is None:
            return world
        points = world[:, :3]
        smooth = self._world(points, capture_ms, part_size(points))
        out: FloatArray = np.concatenate([smooth, world[:, 3:]], axis=1)
        return out
