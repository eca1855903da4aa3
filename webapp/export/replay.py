"""A recording replayed as VMC in real time, to try a VSeeFace or VNyan setup without a camera.

Each frame's rig (recorded, or solved from its landmarks) is sent when it is due: at the
replay's start plus the frame's time_ms from the first frame's, on the event loop's
monotonic clock, so the receiver sees the recording's own pace. A frame already late is
sent at once, never skipped. As the server's VMC out (whose packets these are): frames
without a pose send nothing until none has had one for 2 s, then the rest pose; and at the
end, and when the replay is cancelled (Ctrl-C), the rest pose: a receiver would hold the
last pose.
"""

from __future__ import annotations

import asyncio

from webapp.export.recording import Recording
from webapp.export.rigs import rig_of
from webapp.vmc.sender import Target, VmcSender


async def replay(recording: Recording, *targets: Target) -> int:
    """Sends the recording to each of `targets`; returns the frames sent."""
    sender = await VmcSender.open(*targets)
    loop = asyncio.get_running_loop()
    start = loop.time()
    first_ms = recording.frames[0].time_ms
    try:
        for frame in recording.frames:
            due = start + (frame.time_ms - first_ms) / 1000.0
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            rig = rig_of(frame)
            if rig is None:
                sender.unseen(frame.time_ms / 1000.0)
            else:
                sender.send(rig, frame.time_ms / 1000.0)
    finally:
        sender.rest()
        sender.close()
    return sender.sent
