"""A TCP forwarder for tests whose network must fail on cue: drop() cuts every connection
through it at once, as a Wi-Fi hand-over or a NAT timeout does, while the server stays up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field


@dataclass
class TcpProxy:
    host: str
    port: int
    accepted: int = 0
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
        pair = {writer, upstream_writer}
        self._writers |= pair
        self.accepted += 1
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_pipe(reader, upstream_writer))
                group.create_task(_pipe(upstream_reader, writer))
        finally:
            self._writers -= pair
            for w in pair:
                w.transport.abort()

    def drop(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


@asynccontextmanager
async def tcp_proxy(host: str, port: int) -> AsyncIterator[tuple[int, TcpProxy]]:
    """A forwarder to host:port on a free loopback port: yields (its port, the proxy)."""
    proxy = TcpProxy(host, port)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], proxy
    finally:
        proxy.drop()
        server.close()
        await server.wait_closed()
