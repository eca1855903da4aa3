"""What the inference worker does with each request: runs a still or a frame, opens and
ends a session's graph, and answers every job, or says why it failed.

The child process (child.py) feeds it requests and the frames coming out of their graphs,
one at a time, from its main loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from webapp.engine import imaging, pipelined, wire
from webapp.engine.blendshapes import MESH_POINTS, BlendshapeModel
from webapp.engine.graphs import GraphPool
from webapp.engine.inference import StillEngine, TrackEngine, warm
from webapp.errors import HolotrackError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Through:
    """A frame added with `overlap` came out of its graph; posted from one of its threads."""

    job_id: int
    outputs: pipelined.Outputs


@dataclass
class _Flight:
    """A frame added to its graph and not yet answered: what its answer needs."""

    session: str
    engine: TrackEngine
    started: float
    decoded: float
    size: tuple[int, int]
    blendshapes: bool


class Worker:
    """Stills and frames run on the main thread, one at a time; graphs are opened, and
    counted, on the pool's preparer thread, which answers through `send` itself.

    A frame sent with `overlap` is only decoded and added to its graph here; when it is
    through, `post` hands a `Through` to the main loop, which answers it with `through`.
    """

    def __init__(
        self, send: Callable[[wire.Reply], None], post: Callable[[Through], None] | None = None
    ) -> None:
        self._send = send
        self._post = post
        self._flights: dict[int, _Flight] = {}
        self._ending: dict[str, int] = {}  # EndGraph's job id, held until its frames are out
        self.still = StillEngine()
        warm(self.still)
        self.pool = GraphPool()
        # Loaded by the first frame that asks: most sessions never do. Used on this
        # process's main thread only, where every frame is answered.
        self._face_model: BlendshapeModel | None = None

    def handle(self, request: wire.Request) -> wire.Reply | None:
        """The reply, or None when the preparer thread will send it."""
        job_id, job = request.job_id, request.job
        try:
            match job:
                case wire.RunStill(data=data, max_pixels=max_pixels):
                    return wire.Done(job_id, self.predict(data, max_pixels))
                case wire.RunFrame(overlap=True) if self._post is not None:
                    self._add_frame(job_id, job)
                case wire.RunFrame():
                    return wire.Done(job_id, self.frame(job))
                case wire.OpenGraph(session=session, track=track):
                    self.pool.expect(session)
                    self._later(job_id, self.pool.open, session, track)
                case wire.EndGraph(session=session):
                    if self._in_flight(session):
                        self._ending[session] = job_id  # a graph is reset only once idle
                    else:
                        self._end(job_id, session)
                case wire.CountGraphs():
                    self._later(job_id, self.pool.counts)
                case _:
                    return wire.Failed(job_id, "internal", f"unknown job {job!r}")
        except Exception as exc:  # every failure goes back to the caller, never kills the loop
            return _failure(job_id, type(job).__name__, exc)
        return None

    def _end(self, job_id: int, session: str) -> None:
        self.pool.end(session)
        # Counted after the recycling just queued, so graphs of ended sessions are counted
        # where they end up.
        self._later(job_id, self.pool.counts)

    def _in_flight(self, session: str) -> bool:
        return any(flight.session == session for flight in self._flights.values())

    def _add_frame(self, job_id: int, job: wire.RunFrame) -> None:
        started = time.perf_counter()
        rgb = imaging.decode(job.data, job.max_pixels)
        decoded = time.perf_counter()
        engine = self.pool.get(job.session, job.track)
        size = (int(rgb.shape[1]), int(rgb.shape[0]))
        self._flights[job_id] = _Flight(
            job.session, engine, started, decoded, size, job.blendshapes
        )
        post = self._post
        assert post is not None
        try:
            engine.submit(rgb, job.capture_ms, lambda outputs: post(Through(job_id, outputs)))
        except Exception as exc:
            # The graph failed: the frames already in it will never come out either.
            self._fail_graph(engine, exc)
            self._settle(job.session)

    def through(self, event: Through) -> None:
        """Answers a frame added with `overlap`, now that its graph is done with it."""
        flight = self._flights.pop(event.job_id, None)
        if flight is None:
            return
        try:
            landmarks = flight.engine.landmarks(event.outputs)
            result = self._frame_result(
                landmarks, flight.size, flight.blendshapes, flight.started, flight.decoded
            )
            self._send(wire.Done(event.job_id, result))
        except Exception as exc:
            self._send(_failure(event.job_id, "RunFrame", exc))
        self._settle(flight.session)

    def check_graphs(self) -> None:
        """Frames in a graph that stopped on an error are answered with it, not awaited."""
        for job_id, flight in list(self._flights.items()):
            if job_id in self._flights and flight.engine.failed():
                self._fail_graph(flight.engine, RuntimeError(flight.engine.error()))
                self._settle(flight.session)

    def _fail_graph(self, engine: TrackEngine, error: Exception) -> None:
        for job_id, flight in list(self._flights.items()):
            if flight.engine is engine:
                del self._flights[job_id]
                self._send(_failure(job_id, "RunFrame", error))

    def _settle(self, session: str) -> None:
        """An EndGraph that waited for this session's frames runs once the last is out."""
        if session in self._ending and not self._in_flight(session):
            self._end(self._ending.pop(session), session)

    def _later(self, job_id: int, work: Callable[..., Any], *args: Any) -> None:
        self.pool.prepare(self._answer, job_id, work, *args)

    def _answer(self, job_id: int, work: Callable[..., Any], *args: Any) -> None:
        try:
            self._send(wire.Done(job_id, work(*args)))
        except Exception as exc:
            self._send(_failure(job_id, work.__name__, exc))

    def predict(self, data: bytes, max_pixels: int) -> wire.StillResult:
        started = time.perf_counter()
        rgb = imaging.decode(data, max_pixels)
        decoded = time.perf_counter()
        landmarks = self.still.process(rgb)
        done = time.perf_counter()
        warnings = []
        found = landmarks.found_anything()
        blank = not found and imaging.flat(rgb)
        if blank:
            nobody = "the image is one flat colour: there is nobody in it to find"
            warnings.append({"code": "no_person", "message": nobody})
        elif not found:
            # The model sees the image scaled by its longest side, so a person at full
            # height in a wide picture is as small to it as one far off. The seated woman of
            # media/ (465 px of her 640 px photo) was found at 14.5% of the longest side
            # (4000x3000 and 3200x640 frames), not at 13.3% (3500x640) or less.
            nobody = (
                "no person was found in the image (a person under about a seventh of its "
                "longest side may be too small for the model: crop closer)"
            )
            warnings.append({"code": "no_person", "message": nobody})
        if imaging.animated(data):
            warnings.append(
                {
                    "code": "animated",
                    "message": "the image is animated: its first frame was tracked",
                }
            )
        score = imaging.sharpness(rgb)
        if score < imaging.BLUR_THRESHOLD and not blank:
            # With no landmarks, "landmarks may be inaccurate" spoke of none.
            effect = "landmarks may be inaccurate" if found else "it may be why nobody was found"
            warnings.append(
                {
                    "code": "blurred",
                    "message": f"the image is strongly blurred (sharpness {score:.1f} < "
                    f"{imaging.BLUR_THRESHOLD:.0f}); {effect}",
                }
            )
        return wire.StillResult(
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
            landmarks=landmarks,
            warnings=warnings,
            decode_ms=(decoded - started) * 1000.0,
            inference_ms=(done - decoded) * 1000.0,
        )

    def frame(self, job: wire.RunFrame) -> wire.FrameResult:
        started = time.perf_counter()
        rgb = imaging.decode(job.data, job.max_pixels)
        decoded = time.perf_counter()
        engine = self.pool.get(job.session, job.track)
        landmarks = engine.process(rgb, job.capture_ms)
        size = (int(rgb.shape[1]), int(rgb.shape[0]))
        return self._frame_result(landmarks, size, job.blendshapes, started, decoded)

    def _frame_result(
        self,
        landmarks: wire.Landmarks,
        size: tuple[int, int],
        blendshapes: bool,
        started: float,
        decoded: float,
    ) -> wire.FrameResult:
        """A frame's answer; its inference counted from `decoded` to now, blendshapes in."""
        width, height = size
        shapes = self._blendshapes(blendshapes, landmarks, width, height)
        return wire.FrameResult(
            graphs=self.pool.counts().graphs,
            width=width,
            height=height,
            landmarks=landmarks,
            decode_ms=(decoded - started) * 1000.0,
            inference_ms=(time.perf_counter() - decoded) * 1000.0,
            blendshapes=shapes,
        )

    def _blendshapes(
        self, wanted: bool, found: wire.Landmarks, width: int, height: int
    ) -> NDArray[np.float64] | None:
        if not wanted or found.face is None or len(found.face) < MESH_POINTS:
            return None
        if self._face_model is None:
            self._face_model = BlendshapeModel()
        return self._face_model(found.face, width, height)

    def close(self) -> None:
        self.pool.close()
        self.still.close()


def _failure(job_id: int, what: str, exc: Exception) -> wire.Failed:
    if isinstance(exc, HolotrackError):
        return wire.Failed(job_id, exc.code, exc.detail)
    log.exception("job %s (%s) failed", job_id, what)
    return wire.Failed(job_id, "model_error", f"{type(exc).__name__}: {exc}")
