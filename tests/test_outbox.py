"""A session's outbox alone, with a fake socket: newest result, bounded backlog, timeouts."""

from __future__ import annotations

import asyncio

from webapp.engine.jobs import Frame
from webapp.live.outbox import MAX_CONTROL_BACKLOG, Outbox

WAIT = 5.0


class FakeSocket:
    def __init__(self, *, stuck: bool = False) -> None:
        self.sent: list[str] = []
        self.closed = False
        self.arrived = asyncio.Event()
        self.sending = asyncio.Event()
        self._stuck = stuck

    async def send_str(self, data: str) -> None:
        self.sending.set()
        if self._stuck:
            await asyncio.Event().wait()  # a peer that never reads
        self.sent.append(data)
        self.arrived.set()


def outbox(
    ws: FakeSocket, send_timeout: float = 5.0, stats_interval: float = 60.0
) -> tuple[Outbox, list[Frame], asyncio.Event]:
    sent: list[Frame] = []
    stuck = asyncio.Event()
    box = Outbox(
        ws,
        send_timeout=send_timeout,
        stats_interval=stats_interval,
        stats=lambda: "stats",
        sent=sent.append,
        stuck=stuck.set,
    )
    return box, sent, stuck


async def until_sent(ws: FakeSocket, count: int) -> None:
    while len(ws.sent) < count:
        ws.arrived.clear()
        await asyncio.wait_for(ws.arrived.wait(), WAIT)


async def test_only_the_newest_unsent_result_goes_out() -> None:
    ws = FakeSocket()
    box, sent, _ = outbox(ws)
    first, second = Frame(1, 0.0, b"a"), Frame(2, 0.0, b"b")
    assert box.put_result(first, "one") is False
    assert box.put_result(second, "two") is True
    box.start("test")
    await until_sent(ws, 1)
    await box.stop()
    assert ws.sent == ["two"]
    assert sent == [second]


async def test_control_messages_go_first_and_their_backlog_is_bounded() -> None:
    ws = FakeSocket()
    box, _, _ = outbox(ws)
    box.put_result(Frame(1, 0.0, b"a"), "result")
    for n in range(MAX_CONTROL_BACKLOG + 5):
        box.put_control(f"control {n}")
    box.start("test")
    await until_sent(ws, MAX_CONTROL_BACKLOG + 1)
    await box.stop()
    assert ws.sent == [f"control {n}" for n in range(MAX_CONTROL_BACKLOG)] + ["result"]


class FeedingSocket(FakeSocket):
    """A peer for whom each control message sent brings another (an emotion pressed away
    while the last press is on its way), `more` times."""

    def __init__(self, more: int) -> None:
        super().__init__()
        self.box: Outbox | None = None
        self.more = more

    async def send_str(self, data: str) -> None:
        await super().send_str(data)
        if data.startswith("control") and self.more and self.box is not None:
            self.more -= 1
            self.box.put_control(f"control again {self.more}")


async def test_control_messages_that_keep_coming_do_not_hold_the_result_back() -> None:
    ws = FeedingSocket(more=20)
    box, _, _ = outbox(ws)
    ws.box = box
    box.put_result(Frame(1, 0.0, b"a"), "result")
    box.put_control("control")
    box.start("test")
    await until_sent(ws, 22)
    await box.stop()
    # Those waiting go first, then the result, before the ones that came meanwhile.
    assert ws.sent.index("result") == 1, ws.sent


async def test_stats_go_out_on_their_interval() -> None:
    ws = FakeSocket()
    box, _, _ = outbox(ws, stats_interval=0.01)
    box.start("test")
    await until_sent(ws, 2)
    await box.stop()
    assert ws.sent[:2] == ["stats", "stats"]


async def test_a_client_that_stops_reading_is_given_up_on() -> None:
    ws = FakeSocket(stuck=True)
    box, sent, stuck = outbox(ws, send_timeout=0.05)
    box.put_result(Frame(1, 0.0, b"a"), "result")
    box.start("test")
    await asyncio.wait_for(stuck.wait(), WAIT)
    await box.stop()
    assert sent == []


class StaleDrainSocket(FakeSocket):
    """aiohttp after a timed-out send: the drain future it keeps is cancelled, so every
    later send raises CancelledError at once, though nobody cancelled the writer."""

    async def send_str(self, data: str) -> None:
        drain: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        drain.cancel()
        await drain


async def test_a_stale_cancelled_drain_counts_as_stuck_not_as_our_cancellation() -> None:
    ws = StaleDrainSocket()
    box, sent, stuck = outbox(ws)
    box.put_result(Frame(1, 0.0, b"a"), "result")
    box.start("test")
    await asyncio.wait_for(stuck.wait(), WAIT)
    await box.stop()
    assert sent == []


async def test_stopping_a_writer_stuck_in_a_send_cancels_it() -> None:
    ws = FakeSocket(stuck=True)
    box, _, stuck = outbox(ws, send_timeout=60.0)
    box.put_result(Frame(1, 0.0, b"a"), "result")
    box.start("test")
    await asyncio.wait_for(ws.sending.wait(), WAIT)
    await asyncio.wait_for(box.stop(), WAIT)
    assert not stuck.is_set()
