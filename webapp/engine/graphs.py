"""A worker's video-mode graphs: one per live session, and primed spares for the next ones.

Graphs are built, primed, reset and closed on one preparer thread, so a burst of new or
ended sessions never stalls the frames the worker's main thread is running.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from webapp.engine.inference import TrackEngine, warm
from webapp.engine.wire import GraphCounts
from webapp.protocol import Track

MAX_SPARES = 2


class GraphPool:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # sessions and spares, shared with the preparer
        self._preparer = ThreadPoolExecutor(1, thread_name_prefix="prepare")
        self.sessions: dict[str, TrackEngine] = {}
        # Sessions whose graph is queued on the preparer or being built, and those of them
        # already ended: a client that opens and closes sessions faster than graphs build
        # would otherwise have every queued graph built, each recycled only after all of
        # them (5 GB in 16 s from 100 hellos, each closed at once).
        self._opening: set[str] = set()
        self._ended_early: set[str] = set()
        self.spares: dict[Track, list[TrackEngine]] = {track: [] for track in Track}
        for track in Track:
            engine = TrackEngine(track)
            warm(engine)
            self.spares[track].append(engine)

    def prepare(self, work: Callable[..., Any], *args: Any) -> None:
        """Runs `work` on the preparer thread, after everything handed to it before."""
        self._preparer.submit(work, *args)

    def expect(self, session: str) -> None:
        """`session`'s open() is queued: an end() before it is done cancels it."""
        with self._lock:
            self._opening.add(session)

    def open(self, session: str, track: Track) -> GraphCounts:
        """A primed graph for a new session: a spare if one is ready, else a new one; none
        if the session has already ended."""
        with self._lock:
            if session in self._ended_early:
                self._forget(session)
                return self._counts()
            engine = self.spares[track].pop() if self.spares[track] else None
        if engine is None:
            try:
                engine = TrackEngine(track)
                engine.prime()
            except BaseException:
                with self._lock:
                    self._forget(session)
                raise
        with self._lock:
            ended = session in self._ended_early
            self._forget(session)
            if not ended:
                self.sessions[session] = engine
        if ended:
            self._recycle(engine)
        return self.counts()

    def _forget(self, session: str) -> None:
        self._opening.discard(session)
        self._ended_early.discard(session)

    def get(self, session: str, track: Track) -> TrackEngine:
        with self._lock:
            engine = self.sessions.get(session)
        if engine is None:
            self.open(session, track)
            engine = self.sessions[session]
        return engine

    def end(self, session: str) -> None:
        with self._lock:
            engine = self.sessions.pop(session, None)
            if engine is None and session in self._opening:
                self._ended_early.add(session)
        if engine is not None:
            self.prepare(self._recycle, engine)

    def _recycle(self, engine: TrackEngine) -> None:
        """Reset and primed off the main thread; kept as a spare, or closed if enough are."""
        with self._lock:
            keep = len(self.spares[engine.track]) < MAX_SPARES
        if not keep:
            engine.close()
            _return_freed_memory()
            return
        engine.reset()
        engine.prime()
        with self._lock:
            self.spares[engine.track].append(engine)

    def counts(self) -> GraphCounts:
        with self._lock:
            return self._counts()

    def _counts(self) -> GraphCounts:
        spares = sum(len(s) for s in self.spares.values())
        # The 1 is the worker's still-image graph.
        return GraphCounts(graphs=1 + len(self.sessions) + spares, sessions=len(self.sessions))

    def close(self) -> None:
        self._preparer.shutdown(wait=True)
        with self._lock:
            engines = [*self.sessions.values(), *(e for s in self.spares.values() for e in s)]
            self.sessions.clear()
            for spares in self.spares.values():
                spares.clear()
        for engine in engines:
            engine.close()


def _find_malloc_trim() -> Callable[[int], int] | None:
    library = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(library), "malloc_trim", None) if library else None


_malloc_trim = _find_malloc_trim()


def _return_freed_memory() -> None:
    """glibc keeps a closed graph's memory in its heap arenas: after 1000 sessions came and
    went a worker held 38% more than before (bench/soak.py), and 500 sessions took one from
    2.0 to 2.5 GB even with two arenas. Trimming after each close hands it back; fixing
    MALLOC_MMAP_THRESHOLD_ instead did too, but made every frame ~13% slower. Runs on the
    preparer thread, where its 15-60 ms delays no frame."""
    if _malloc_trim is not None:
        _malloc_trim(0)
