"""MediaPipe Holistic and Pose graphs behind a small typed surface; nothing here knows aiohttp.

One engine object must never run two calls at once: callers own that rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from mediapipe.python.solutions import holistic as mp_holistic
from mediapipe.python.solutions import pose as mp_pose

from webapp.engine import pipelined
from webapp.engine.imaging import RGBImage
from webapp.engine.points import part_array
from webapp.engine.wire import Landmarks
from webapp.protocol import Track

# SolutionBase.process() adds this before every call to fake a 30 fps clock.
_SIMULATED_STEP_US = 33333
MAX_GAP_US = 10_000_000


def extract(results: Any) -> Landmarks:
    """MediaPipe's result namedtuple to float arrays, ready to pickle; as_json() rounds them."""
    return Landmarks(
        pose=part_array(results.pose_landmarks, 4),
        face=part_array(getattr(results, "face_landmarks", None), 3),
        left_hand=part_array(getattr(results, "left_hand_landmarks", None), 3),
        right_hand=part_array(getattr(results, "right_hand_landmarks", None), 3),
        pose_world=part_array(getattr(results, "pose_world_landmarks", None), 3),
    )


class StillEngine:
    """Static-image mode: every call is independent, so one engine serves any request."""

    def __init__(self) -> None:
        self._graph = mp_holistic.Holistic(static_image_mode=True, model_complexity=1)

    def process(self, rgb: RGBImage) -> Landmarks:
        return extract(self._graph.process(rgb))

    def close(self) -> None:
        self._graph.close()


class TrackEngine:
    """Video mode for one session: tracking and smoothing state follow that session's frames.

    Timestamps come from the client's capture clock, so the smoothing filters see the
    real spacing of frames (a dropped frame is a longer gap, not a fake 33 ms step).
    """

    def __init__(self, track: Track) -> None:
        self.track = track
        if track is Track.HOLISTIC:
            # Irises let the rig move the eyes (lookLeft...); the refined mesh ships in the
            # wheel and cost no measurable time per frame here (bench/avatar_quality.py).
            self._graph: Any = mp_holistic.Holistic(model_complexity=1, refine_face_landmarks=True)
        else:
            self._graph = mp_pose.Pose(model_complexity=1)
        self._last_us = 0
        self._origin_us = _SIMULATED_STEP_US
        self._first_capture_us: int | None = None
        self._sorter = pipelined.install(self._graph, self._through)
        self._callers: dict[int, Callable[[pipelined.Outputs], None]] = {}

    def timestamp_for(self, capture_ms: float) -> int:
        """Graph timestamps must rise strictly, whatever the client's clock does."""
        capture_us = int(capture_ms * 1000.0)
        if self._first_capture_us is None:
            self._first_capture_us = capture_us
        wanted = self._origin_us + (capture_us - self._first_capture_us)
        # A client's clock may jump anywhere; a graph's clock moves at most MAX_GAP_US a
        # frame, so it can never run toward int64's end for the sessions that reuse it.
        return min(max(wanted, self._last_us + 1), self._last_us + MAX_GAP_US)

    def submit(
        self, rgb: RGBImage, capture_ms: float, done: Callable[[pipelined.Outputs], None]
    ) -> None:
        """Adds a frame without waiting for the graph; `done` gets its outputs, on one of
        the graph's threads, after those of every frame submitted before it."""
        stamp = self.timestamp_for(capture_ms)
        self._callers[stamp] = done
        try:
            pipelined.add_frame(self._graph, self._sorter, rgb, stamp)
        except Exception:
            self._callers.clear()
            raise
        self._last_us = stamp

    def failed(self) -> bool:
        """The graph stopped on an error: frames submitted to it will never come out."""
        return bool(self._graph._graph.has_error())

    def error(self) -> str:
        return str(self._graph._graph.get_combined_error_message())

    def landmarks(self, outputs: pipelined.Outputs) -> Landmarks:
        """A submitted frame's landmarks, from what `done` was given."""
        return extract(pipelined.results(self._graph, outputs))

    def _through(self, stamp: int, outputs: pipelined.Outputs) -> None:
        done = self._callers.pop(stamp, None)
        if done is not None:
            done(outputs)

    def process(self, rgb: RGBImage, capture_ms: float) -> Landmarks:
        """One frame, waiting for it; never while submitted frames are still in the graph."""
        stamp = self.timestamp_for(capture_ms)
        self._graph._simulated_timestamp = stamp - _SIMULATED_STEP_US
        results = self._graph.process(rgb)
        self._last_us = stamp
        return extract(results)

    def reset(self) -> None:
        """Forget the previous session so this graph can serve the next one."""
        self._graph.reset()
        self._sorter.forget()
        self._callers.clear()
        self._forget_clock()

    def prime(self) -> None:
        """Runs one blank frame, so a fresh or reset graph is fast on its first real one.

        Nothing is found in a blank frame, so no tracking state carries over.
        """
        self.process(np.zeros((64, 64, 3), dtype=np.uint8), 0.0)
        self._forget_clock()

    def _forget_clock(self) -> None:
        self._origin_us = self._last_us + _SIMULATED_STEP_US
        self._first_capture_us = None

    def close(self) -> None:
        self._graph.close()


def _pairs(connections: frozenset[tuple[int, int]]) -> list[list[int]]:
    return sorted([int(a), int(b)] for a, b in connections)


def connections() -> dict[str, list[list[int]]]:
    """MediaPipe's own bone tables, for drawing; the page never hard-codes them."""
    return {
        "pose": _pairs(mp_holistic.POSE_CONNECTIONS),
        "hand": _pairs(mp_holistic.HAND_CONNECTIONS),
        "face": _pairs(mp_holistic.FACEMESH_TESSELATION),
        "face_contours": _pairs(mp_holistic.FACEMESH_CONTOURS),
    }


def warm(engine: StillEngine | TrackEngine) -> None:
    """Runs one blank frame so the models are loaded before the first real request."""
    if isinstance(engine, StillEngine):
        engine.process(np.zeros((64, 64, 3), dtype=np.uint8))
    else:
        engine.prime()
