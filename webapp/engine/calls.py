"""What a lane says to its worker and hands back, apart from when it says it (lane.py).

A lane's job becomes a wire job; a still's outcome goes to the future its client waits on;
a session's graph is opened and ended with calls of their own, beside the running frames.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from webapp.config import Config
from webapp.engine.imaging import VIDEO_WORK_PIXELS
from webapp.engine.jobs import Frame, StillJob
from webapp.engine.pacing import STILL
from webapp.engine.process import WorkerHandle
from webapp.engine.sessions import LaneSessions
from webapp.engine.slot import Slot
from webapp.engine.wire import EndGraph, Job, OpenGraph, RunFrame, RunStill
from webapp.errors import HolotrackError, WorkerCrashedError

log = logging.getLogger(__name__)
# Silence that tells a hung worker while only a graph waits on it, in --request-timeouts:
# longer than a video's own wait for its graph (video/run.py, 6), which ends the video in
# its own words first; a frame's (lane.py, 3) is shorter, as a frame's cost is known.
GRAPH_SILENCE_TIMEOUTS = 9.0
LaneJob = StillJob | tuple[Slot, Frame]


def wire_job(job: LaneJob, config: Config) -> tuple[Job[Any], str]:
    """The request the worker runs for `job`, and the kind its service time counts under."""
    if isinstance(job, StillJob):
        return RunStill(job.data, config.max_pixels), STILL
    slot, frame = job
    work = RunFrame(
        slot.id,
        slot.track,
        frame.data,
        frame.capture_ms,
        # A live frame's decoding is timed as its track's, not its own, in the round-robin:
        # a 4900 x 4900 JPEG of 377 kB took 388 ms where a camera's takes 2, and one
        # session sending them cut another's 13.6 fps on its worker to 1. A video's frames
        # (not held to a rate) are the server's own, scaled to VIDEO_WORK_PIXELS: neither
        # --max-frame-pixels nor --max-pixels (an upload's bound) is theirs to meet.
        VIDEO_WORK_PIXELS
        if slot.allowance is None
        else min(config.max_pixels, config.max_frame_pixels),
        overlap=config.overlap_frames,
        blendshapes=slot.blendshapes,
    )
    return work, slot.kind


def deliver_still(job: StillJob, outcome: Any) -> None:
    if job.future.done():
        return  # its client gave up waiting
    if isinstance(outcome, HolotrackError):
        job.future.set_exception(outcome)
    else:
        job.future.set_result(outcome)


async def open_graph(
    worker: WorkerHandle, slot: Slot, sessions: LaneSessions, hung_after: float
) -> None:
    """Opens `slot`'s graph. A worker that answers nothing at all for `hung_after` seconds
    meanwhile is killed as hung, as a lane kills one over a frame (lane.py): a worker
    stopped before a session came had it wait for its graph, with no frame ever sent,
    until --max-session-seconds, and the least-loaded lane took every new one too."""
    watch = asyncio.ensure_future(_kill_if_silent(worker, hung_after))
    try:
        # Asked before this coroutine first yields: a session's EndGraph, spawned after
        # it, must reach the worker after its OpenGraph.
        await worker.call(OpenGraph(slot.id, slot.track))
    except WorkerCrashedError:
        return  # Lane._worker_exited ends every session on it, this one included
    except HolotrackError as exc:
        if not slot.closed:
            sessions.close(slot)
            slot.sink.lost(exc)
        return
    finally:
        watch.cancel()
    if not slot.closed:
        sessions.graph_ready(slot)


async def _kill_if_silent(worker: WorkerHandle, hung_after: float) -> None:
    # Graphs are built one after another on the worker's preparer thread, so a burst of
    # sessions has the last one wait long for its own: silence is what tells a hung worker.
    asked = time.monotonic()
    while True:
        silent = time.monotonic() - max(asked, worker.answered_at)
        if silent >= hung_after:
            break
        # No event to wait on: an answer only moves the deadline on.
        await asyncio.sleep(hung_after - silent)
    log.error(
        "worker %d (pid %d) answered nothing for %.0f s: killed as hung",
        worker.index,
        worker.pid,
        silent,
    )
    worker.kill()


async def end_graph(worker: WorkerHandle, session: str) -> None:
    try:
        counts = await worker.call(EndGraph(session))
    except HolotrackError:
        return
    worker.graphs = counts.graphs
