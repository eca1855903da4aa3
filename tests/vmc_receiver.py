"""A real VMC receiver for tests: python-osc's own asyncio UDP server, recording each frame
and the OSC type tags each address came with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_packet import OscPacket, ParseError
from pythonosc.osc_server import AsyncIOOSCUDPServer
from pythonosc.parsing.osc_types import get_string

# What each VMC address carries (protocol.vmc.info). Unity receivers (EVMC4U's, and those
# built like it) take a message only if each argument `is float` or `is string` as listed
# and skip it silently otherwise: an int or a double where a float belongs is lost there,
# though python-osc reads either as a number.
VMC_TYPE_TAGS: dict[str, set[str]] = {
    "/VMC/Ext/OK": {",i"},
    "/VMC/Ext/T": {",f"},
    "/VMC/Ext/Root/Pos": {",sfffffff"},
    "/VMC/Ext/Bone/Pos": {",sfffffff"},
    "/VMC/Ext/Blend/Val": {",sf"},
    "/VMC/Ext/Blend/Apply": {","},
}


@dataclass
class Received:
    """Messages as the receiver parsed them; a frame is complete at /VMC/Ext/Blend/Apply."""

    messages: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    type_tags: dict[str, set[str]] = field(default_factory=dict)
    frames: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, address: str, *args: Any) -> None:
        self.messages.append((address, args))
        if address == "/VMC/Ext/Blend/Apply":
            self.frames += 1
            self.changed.set()

    def record_type_tags(self, packet: bytes) -> None:
        try:
            messages = [timed.message for timed in OscPacket(packet).messages]
        except ParseError:
            self.type_tags.setdefault("unparsable packet", set()).add(packet[:32].hex())
            return
        for message in messages:
            _, end = get_string(message.dgram, 0)
            tags, _ = get_string(message.dgram, end)
            self.type_tags.setdefault(message.address, set()).add(tags)

    async def wait_frames(self, count: int) -> None:
        await self.wait_until(lambda: self.frames >= count)

    async def wait_until(self, done: Callable[[], bool]) -> None:
        """Until `done()` holds, checked at each complete frame."""
        async with asyncio.timeout(60.0):
            while not done():
                self.changed.clear()
                await self.changed.wait()

    def complete_frames(self) -> list[list[tuple[str, tuple[Any, ...]]]]:
        """Each complete frame's messages, in order."""
        frames: list[list[tuple[str, tuple[Any, ...]]]] = [[]]
        for message in self.messages:
            frames[-1].append(message)
            if message[0] == "/VMC/Ext/Blend/Apply":
                frames.append([])
        return frames[:-1]

    def last_frame(self) -> list[tuple[str, tuple[Any, ...]]]:
        """The messages of the newest complete frame, from its /VMC/Ext/OK to its Apply."""
        end = max(i for i, (a, _) in enumerate(self.messages) if a == "/VMC/Ext/Blend/Apply")
        start = max(i for i, (a, _) in enumerate(self.messages[:end]) if a == "/VMC/Ext/OK")
        return self.messages[start : end + 1]


class _Dispatcher(Dispatcher):
    """python-osc's dispatcher, which hands handlers the arguments but not their types."""

    def __init__(self, received: Received) -> None:
        super().__init__()
        self._received = received
        self.set_default_handler(received.record)

    def call_handlers_for_packet(self, data: bytes, client_address: tuple[str, int]) -> list[Any]:
        self._received.record_type_tags(data)
        return super().call_handlers_for_packet(data, client_address)


@asynccontextmanager
async def vmc_receiver() -> AsyncIterator[tuple[int, Received]]:
    """A receiver on a free loopback port: yields (port, what it received)."""
    received = Received()
    dispatcher = _Dispatcher(received)
    loop = asyncio.get_running_loop()
    assert isinstance(loop, asyncio.BaseEventLoop)
    server = AsyncIOOSCUDPServer(("127.0.0.1", 0), dispatcher, loop)
    transport, _ = await server.create_serve_endpoint()
    try:
        port: int = transport.get_extra_info("sockname")[1]
        yield port, received
    finally:
        transport.close()
