"""A video-mode graph fed without waiting for it to go idle, so two frames can be inside it.

`SolutionBase.process` adds a frame and blocks in `wait_until_idle`, so a graph's later
calculators (face and hands of frame N) never overlap its earlier ones (pose of N+1).
`OutputSorter` takes the solution's output observer over: every packet, and every timestamp
bound MediaPipe reports on an output stream, lands here sorted by timestamp, and a frame is done
when every output stream has settled past its timestamp. Frames still go through the same
graph in timestamp order, so tracking (the previous frame's landmarks feeding the next) is
the same as one at a time.
"""

from __future__ import annotations

import collections
import threading
import types
from collections.abc import Callable
from typing import Any

# A frame's outputs by stream name (packets, not yet converted), handed to `done`.
Outputs = dict[str, Any]
Done = Callable[[int, Outputs], None]


class OutputSorter(dict[str, Any]):
    """Stands in for `SolutionBase._graph_outputs`, which the solution's observer callback
    writes to (`outputs[stream] = packet`) from the graph's threads.

    It stays the plain dict `process()` expects, and beside it sorts the packets of frames
    added with `add` by timestamp, calling `done(stamp, outputs)` for each in order.
    """

    def __init__(self, streams: list[str], done: Done) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._done = done
        self._settled = dict.fromkeys(streams, -1)
        self._outputs: dict[int, Outputs] = {}
        self.waiting: collections.deque[int] = collections.deque()

    def add(self, stamp: int) -> None:
        with self._lock:
            self.waiting.append(stamp)
            self._outputs[stamp] = {}

    def forget(self) -> list[int]:
        """After the graph was reset or failed: frames that will never finish."""
        with self._lock:
            lost = list(self.waiting)
            self.waiting.clear()
            self._outputs.clear()
            for stream in self._settled:
                self._settled[stream] = -1
        return lost

    def __setitem__(self, stream: str, packet: Any) -> None:
        super().__setitem__(stream, packet)
        stamp = packet.timestamp.value
        finished: list[tuple[int, Outputs]] = []
        with self._lock:
            if not self.waiting:
                return  # a frame run by process(); nothing to sort
            if not packet.is_empty() and stamp in self._outputs:
                self._outputs[stamp][stream] = packet
            if stamp > self._settled.get(stream, stamp):
                self._settled[stream] = stamp
            settled = min(self._settled.values())
            while self.waiting and self.waiting[0] <= settled:
                first = self.waiting.popleft()
                finished.append((first, self._outputs.pop(first)))
        for stamp_done, outputs in finished:
            self._done(stamp_done, outputs)


def results(solution: Any, outputs: Outputs) -> types.SimpleNamespace:
    """The same result object `process()` builds, from one frame's packets."""
    types_by_stream = solution._output_stream_type_info
    return types.SimpleNamespace(
        **{
            stream: solution._get_packet_content(kind, outputs[stream])
            if stream in outputs
            else None
            for stream, kind in types_by_stream.items()
        }
    )


def install(solution: Any, done: Done) -> OutputSorter:
    sorter = OutputSorter(list(solution._output_stream_type_info), done)
    solution._graph_outputs = sorter
    return sorter


def add_frame(solution: Any, sorter: OutputSorter, rgb: Any, stamp: int) -> None:
    """Adds a frame at `stamp` and returns at once; `done` is called when it is through."""
    (stream, kind), *_ = solution._input_stream_type_info.items()
    sorter.add(stamp)
    try:
        solution._graph.add_packet_to_input_stream(
            stream=stream, packet=solution._make_packet(kind, rgb).at(stamp)
        )
    except Exception:
        sorter.forget()
        raise
