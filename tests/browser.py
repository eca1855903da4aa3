"""Helpers for the real-browser tests: Debian's Chromium through Playwright, a fake camera
fed from the shared footage, and canvas pixel counts."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import pytest
from aiohttp import web
from playwright.async_api import ConsoleMessage, Page, WebSocket, WebSocketRoute, async_playwright

from webapp.keys import SESSIONS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous: the first request loads the model in a worker on a busy 2-core machine.
TIMEOUT_MS = 120_000

# Counts the pixels of `selector`'s canvas within `tolerance` of each named colour.
COUNT_COLORS_JS = """
([canvas, colors, tolerance]) => {
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  const targets = Object.entries(colors).map(([name, hex]) => [
    name, ...[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)),
  ]);
  const counts = Object.fromEntries(targets.map(([name]) => [name, 0]));
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] < 250) continue;
    for (const [name, r, g, b] of targets) {
      if (Math.abs(data[i] - r) <= tolerance && Math.abs(data[i + 1] - g) <= tolerance
          && Math.abs(data[i + 2] - b) <= tolerance) {
        counts[name] += 1;
      }
    }
  }
  return counts;
}
"""


def write_y4m(
    video: Path, out: Path, frames: int = 75, start: int = 0, size: tuple[int, int] | None = None
) -> Path:
    """Converts `frames` frames of `video`, from frame `start`, to a Y4M file Chromium's fake
    camera plays (in a loop); `size`: (width, height) each frame is stretched to, a camera
    of another shape."""
    capture = cv2.VideoCapture(str(video))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, start)
        width, height = size or (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        fps = round(capture.get(cv2.CAP_PROP_FPS)) or 30
        written = 0
        with out.open("wb") as y4m:
            y4m.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
            while written < frames:
                ok, bgr = capture.read()
                if not ok:
                    break
                if size:
                    bgr = cv2.resize(bgr, size)
                y4m.write(b"FRAME\n")
                y4m.write(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes())
                written += 1
    finally:
        capture.release()
    if written == 0:
        raise RuntimeError(f"no frames could be read from {video}")
    return out


async def cut_camera_session(page: Page, app: web.Application) -> str:
    """Resets the connection of the page's camera session (body's data-session) under it,
    as a network does, and waits for the page to reconnect by itself; the new session's id."""
    session = await page.get_attribute("body", "data-session")
    (camera,) = [s for s in app[SESSIONS] if s.name == session]
    assert camera.transport is not None
    camera.transport.abort()
    again = await page.wait_for_function(
        "(old) => document.body.dataset.session !== old && document.body.dataset.session",
        arg=session,
    )
    return str(await again.json_value())


def fake_camera_args(y4m: Path) -> list[str]:
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
    ]


@dataclass
class BrowserPage:
    page: Page
    # Uncaught exceptions and console errors: a page that works logs none.
    errors: list[str] = field(default_factory=list)

    def record(self, message: ConsoleMessage) -> None:
        # A 4xx answer is logged as a failed resource load; the page handles those itself.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(f"console: {message.text}")

    async def colors(self) -> dict[str, str]:
        """The part colours the page draws with (draw.js COLORS)."""
        colors: dict[str, str] = await self.page.evaluate(
            "async () => ({ ...(await import('/static/draw.js')).COLORS })"
        )
        return colors

    async def count_colors(
        self, selector: str, colors: dict[str, str], tolerance: int = 12
    ) -> dict[str, int]:
        canvas = await self.page.query_selector(selector)
        assert canvas is not None, selector
        counts: dict[str, int] = await self.page.evaluate(
            COUNT_COLORS_JS, [canvas, colors, tolerance]
        )
        return counts

    async def wait_for_colors(
        self, selector: str, bounds: dict[str, tuple[int, int]], tolerance: int = 12
    ) -> None:
        """Waits until the count of each colour on `selector`'s canvas is within its bounds."""
        await self.page.wait_for_function(
            f"""([selector, bounds, tolerance]) => {{
                  const count = ({COUNT_COLORS_JS});
                  const colors = Object.fromEntries(Object.keys(bounds).map((c) => [c, c]));
                  const counts = count([document.querySelector(selector), colors, tolerance]);
                  return Object.entries(bounds).every(
                    ([color, [low, high]]) => low <= counts[color] && counts[color] <= high);
                }}""",
            arg=[selector, bounds, tolerance],
        )

    async def pixel(self, selector: str, x: float, y: float) -> list[int]:
        """The RGBA pixel of a canvas at normalized (x, y)."""
        rgba: list[int] = await self.page.eval_on_selector(
            selector,
            """(canvas, [x, y]) => Array.from(canvas.getContext("2d").getImageData(
                 Math.min(canvas.width - 1, Math.floor(x * canvas.width)),
                 Math.min(canvas.height - 1, Math.floor(y * canvas.height)), 1, 1).data)""",
            [x, y],
        )
        return rgba


def chromium() -> str:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    return str(CHROMIUM)


@asynccontextmanager
async def open_page(
    extra_args: Sequence[str] = (), accept_certificate: bool = False, **context: Any
) -> AsyncIterator[BrowserPage]:
    """A page in a computer's browser; `accept_certificate` as open_phone's; `context`, more
    of the browser context's options (a `timezone_id`)."""
    async with _open_browser(
        extra_args,
        viewport={"width": 1280, "height": 900},
        ignore_https_errors=accept_certificate,
        **context,
    ) as page:
        yield page


@asynccontextmanager
async def _open_browser(extra_args: Sequence[str], **context: Any) -> AsyncIterator[BrowserPage]:
    """A page in a fresh Chromium whose context is made with `context`; its errors and
    console kept."""
    executable = chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            made = await browser.new_context(**context)
            page = await made.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            wrapped = BrowserPage(page)
            page.on("pageerror", lambda error: wrapped.errors.append(f"page: {error}"))
            page.on("console", wrapped.record)
            yield wrapped
        finally:
            await browser.close()


class NetworkDown:
    """The page's network to the server gone for its WebSockets from `cut()` on: each one
    it opens is closed as a lost connection (1006) until `back()`. Only sockets opened
    from then on go through it: a test cuts the running one itself."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.down = True
        self.refused = asyncio.Event()  # the page tried, and was refused

    async def cut(self) -> None:
        await self.page.route_web_socket(re.compile(r"/ws(\?|$)"), self._route)

    def back(self) -> None:
        self.down = False

    async def _route(self, socket: WebSocketRoute) -> None:
        if self.down:
            self.refused.set()
            await socket.close(code=1006)
        else:
            socket.connect_to_server()


def record_socket_urls(page: Page, opened: Callable[[str], None] = lambda url: None) -> list[str]:
    """The address of every WebSocket the page opens from now on, reloads included;
    `opened` is called with each, for a test to wait on (Playwright may report a socket
    after the page has acted on what came over it)."""
    urls: list[str] = []

    def keep(socket: WebSocket) -> None:
        urls.append(socket.url)
        opened(socket.url)

    page.on("websocket", keep)
    return urls


def record_text(
    page: Page,
    heard: Callable[[dict[str, Any]], None] = lambda message: None,
    said: Callable[[dict[str, Any]], None] = lambda message: None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every text message the page sends and receives on its WebSockets from now on,
    parsed; `heard` is called with each one received and `said` with each one sent, for a
    test to wait on (Playwright may report a message after the page has acted on it)."""
    sent: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []

    def on_socket(socket: WebSocket) -> None:
        def keep(
            into: list[dict[str, Any]], then: Callable[[dict[str, Any]], None]
        ) -> Callable[[str | bytes], None]:
            def kept(payload: str | bytes) -> None:
                if isinstance(payload, str):
                    into.append(json.loads(payload))
                    then(into[-1])

            return kept

        socket.on("framesent", keep(sent, said))
        socket.on("framereceived", keep(received, heard))

    page.on("websocket", on_socket)
    return sent, received


class Reported(list[dict[str, Any]]):
    """The messages of one type Playwright has reported, in order, as it reports them (a
    `heard` or `said` for record_text): a test waits for the nth before reading it, as
    Playwright may report a message after the page has acted on it, or on a later one."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._more = asyncio.Event()

    def __call__(self, message: dict[str, Any]) -> None:
        if message.get("type") == self.kind:
            self.append(message)
            self._more.set()

    async def first(self, count: int, within: float = 30.0) -> list[dict[str, Any]]:
        """The first `count`, once they have been reported."""
        async with asyncio.timeout(within):
            while len(self) < count:
                self._more.clear()
                await self._more.wait()
        return self[:count]


class Readies:
    """Each `ready` the page receives from now on, in order, for a test to wait for the
    nth: Playwright may report a message after the page has acted on it."""

    def __init__(self, page: Page) -> None:
        self.seen: list[dict[str, Any]] = []
        self._more = asyncio.Event()
        record_text(page, self._heard)

    def _heard(self, message: dict[str, Any]) -> None:
        if message.get("type") == "ready":
            self.seen.append(message)
            self._more.set()

    async def first(self, count: int, within: float = 30.0) -> list[dict[str, Any]]:
        """The first `count` readies, once they have come."""
        async with asyncio.timeout(within):
            while len(self.seen) < count:
                self._more.clear()
                await self._more.wait()
        return self.seen[:count]


def hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def close_to(rgba: Sequence[int], color: str, tolerance: int = 12) -> bool:
    return rgba[3] >= 250 and all(
        abs(a - b) <= tolerance for a, b in zip(rgba[:3], hex_rgb(color), strict=True)
    )


# Headless Chromium never hides a page (another tab brought to the front, a minimized
# window and Page.setWebLifecycleState all leave it "visible", and it fires no freeze), so
# the tests give the page the visibility a phone would and fire the events it would.
SET_VISIBILITY_JS = """(state) => {
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
  Object.defineProperty(document, "hidden", { configurable: true, get: () => state === "hidden" });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


async def drop_link(page: Page, target: str, url: str) -> None:
    """Drops on the element with id `target` what Chromium drops for a picture or a file's
    link dragged from another site: its address, and no file."""
    await page.evaluate(
        """([target, url]) => {
             const data = new DataTransfer();
             data.setData("text/uri-list", url);
             document.getElementById(target).dispatchEvent(
               new DragEvent("drop", { dataTransfer: data, cancelable: true }));
           }""",
        [target, url],
    )


async def drop_paths(page: Page, target: str, paths: Sequence[Path]) -> None:
    """Drops the files or folders at `paths` on the element with id `target` as a person
    does from a file manager: through the browser's own drag and drop, which alone can
    carry a folder."""
    box = await page.eval_on_selector(
        f"#{target}",
        """el => {
             const r = el.getBoundingClientRect();
             return [r.x + r.width / 2, r.y + r.height / 2];
           }""",
    )
    cdp = await page.context.new_cdp_session(page)
    data = {"items": [], "files": [str(path) for path in paths], "dragOperationsMask": 1}
    for kind in ("dragEnter", "dragOver", "drop"):
        await cdp.send(
            "Input.dispatchDragEvent", {"type": kind, "x": box[0], "y": box[1], "data": data}
        )
    await cdp.detach()


async def hide_page(page: Page, freeze: bool = False) -> None:
    """The page is hidden (another app, the screen locked); with `freeze`, the browser
    then freezes it as Chromium does a hidden tab."""
    await page.evaluate(SET_VISIBILITY_JS, "hidden")
    if freeze:
        await page.evaluate("() => document.dispatchEvent(new Event('freeze'))")


async def show_page(page: Page, frozen: bool = False) -> None:
    """The page is shown again; `frozen`: it was frozen, and is resumed first."""
    if frozen:
        await page.evaluate("() => document.dispatchEvent(new Event('resume'))")
    await page.evaluate(SET_VISIBILITY_JS, "visible")


@asynccontextmanager
async def open_phone(
    viewport: tuple[int, int] = (390, 844),
    extra_args: Sequence[str] = (),
    accept_certificate: bool = False,
) -> AsyncIterator[BrowserPage]:
    """A page as a phone's browser shows it: its viewport, touch, a mobile viewport meta
    honoured, three device pixels to a CSS pixel. `accept_certificate`: as after the
    person pressed "Proceed" on a self-signed certificate's warning."""
    width, height = viewport
    async with _open_browser(
        extra_args,
        viewport={"width": width, "height": height},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=3,
        ignore_https_errors=accept_certificate,
    ) as page:
        yield page
