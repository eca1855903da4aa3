"""QR codes that hand a link to a phone. The PC's avatar page: its code opens the avatar
page on the phone with the PC page's link key, so the phone drives the link whose OBS
address the PC already shows on its loopback port (README, "Phone as the camera"). The
fitness page: its code opens the coach's view on a coach's phone.

The end-to-end tests run the server as the README says (`--host 0.0.0.0 --self-signed`),
read each code off the page's pixels as a phone's camera would, and open what it says in a
phone's browser that accepted the certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, Response, Route

from bench.common import free_port
from tests.browser import fake_camera_args, open_page, open_phone, write_y4m
from tests.live import LiveClient
from tests.media import ASL_VIDEO
from tests.test_avatar_page import (
    expression_near,
    load_model,
    needs_node_modules,
    slide,
    snapshot,
    start_session,
    wait_for_change,
)
from tests.test_avatar_upload import renamed_vrm
from tests.test_lifecycle import serving
from webapp.app import create_app
from webapp.config import Config
from webapp.live.pairing import ALPHABET, LENGTH

Client = TestClient[web.Request, web.Application]

OFFERED = re.compile(r"open on the phone \(accept the warning once\): (\S+)")
ORIGINS = re.compile(r'id="phone-share" data-origins="([^"]*)"')
KEY_JS = "() => localStorage.getItem('holotrack.linkKey:avatar')"
ACCESS_JS = "() => localStorage.getItem('holotrack.accessKey')"


def read_code(png: bytes) -> str:
    """What a QR code in a screenshot says, read by OpenCV's two detectors as phones' camera
    apps, which differ, would: the first that reads it."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    for detector in (cv2.QRCodeDetector(), cv2.QRCodeDetectorAruco()):
        text, _, _ = detector.detectAndDecode(image)
        if text:
            return str(text)
    raise AssertionError("no QR code could be read off the page")


SAYS = "([selector, words]) => document.querySelector(selector).textContent.includes(words)"


async def offer_code(port: int, handed: dict[str, str]) -> str:
    """A pairing code offered as another page would (PUT /api/pair/CODE), on the server's
    loopback port."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    async with (
        aiohttp.ClientSession() as http,
        http.put(f"http://127.0.0.1:{port}/api/pair/{code}", json=handed) as answer,
    ):
        assert answer.status == 201, await answer.text()
    return code


def is_withdrawal(response: Response) -> bool:
    """A page ending its pairing code: its keepalive DELETE, answered."""
    return response.request.method == "DELETE" and "/api/pair/" in response.url


@contextlib.asynccontextmanager
async def on_the_network(
    tmp_path: Path, *flags: str
) -> AsyncIterator[tuple[int, list[str], list[str]]]:
    """The server as the README starts it for a phone (`--host 0.0.0.0 --self-signed
    --local-http-port`, and `flags`): its loopback port, the addresses it offers a phone
    (at least one) and its log."""
    port, local_port = free_port(), free_port()
    flags = ("--host", "0.0.0.0", "--self-signed", "--state-dir", str(tmp_path / "state"), *flags)
    async with serving(port, *flags, "--local-http-port", str(local_port)) as server:
        offered = [found[1] for line in server.lines if (found := OFFERED.search(line))]
        assert offered, f"no address of this machine a phone could reach: {server.lines}"
        yield local_port, offered, server.lines


async def start_workout(page: Page, url: str) -> str:
    """Opens the fitness page at `url`, starts a workout and opens the coach's codes; the
    workout's watch token."""
    await page.goto(url)
    await page.wait_for_selector("body[data-fitness-ready]", state="attached")
    await page.click("#fitness-start")
    await page.wait_for_selector("#coach-share:not([hidden])")
    token = await page.get_attribute("#coach-link", "data-token")
    assert token
    await page.click("#coach-code-box summary")
    return token


async def open_code(page: Page, url: str) -> str:
    """Opens the avatar page at `url` and its "Use a phone as the camera"; its link key."""
    await page.goto(url)
    await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
    assert await page.is_hidden("#phone-code"), "the code shows before it is asked for"
    await page.click("#phone-share summary")
    key: str = await page.evaluate(KEY_JS)
    return key


# The page's sockets send nothing while `silent`: its frames stop, its connection stays.
SILENCE_JS = """(silent) => {
  window.sendFrames ??= WebSocket.prototype.send;
  WebSocket.prototype.send = silent ? function () {} : window.sendFrames;
}"""


@pytest.mark.browser
async def test_the_pc_pages_code_makes_the_phone_the_camera_of_its_obs_link(
    tmp_path: Path,
) -> None:
    needs_node_modules()
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=90)
    async with on_the_network(tmp_path) as (local_port, offered, lines):
        pc_page = f"http://127.0.0.1:{local_port}/avatar"
        assert any(f"open {pc_page} and scan its code" in line for line in lines)
        async with (
            # The PC's camera too: its own Start is pressed at the end.
            open_page(extra_args=fake_camera_args(y4m)) as pc,
            open_phone(extra_args=fake_camera_args(y4m), accept_certificate=True) as phone,
        ):
            # The PC: the avatar page on the loopback port, where OBS will look too.
            key = await open_code(pc.page, pc_page)
            await pc.page.wait_for_selector("#phone-code svg")
            handover = read_code(await pc.page.locator("#phone-code").screenshot())
            assert handover == f"{offered[0]}#link_key={key}"
            words = await pc.page.inner_text("#phone-page")
            assert offered[0] in words
            assert key not in words
            # The OBS link is there before the phone's first frame, on the loopback port.
            await pc.page.wait_for_selector("#watch-share:not([hidden])")
            token = await pc.page.get_attribute("#watch-link", "data-token")
            obs = await pc.page.get_attribute("#watch-link", "href")
            assert obs == f"http://127.0.0.1:{local_port}/avatar?watch={token}"
            assert token
            assert token in await pc.page.inner_text("#relay-command")
            await pc.page.wait_for_selector("#phone-share[data-phone=waiting]")
            assert "Waiting for the phone" in await pc.page.inner_text("#phone-status")

            # The phone: opens what the code says, and the key leaves its address at once.
            await phone.page.goto(handover)
            await phone.page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
            assert await phone.page.evaluate("() => window.location.href") == offered[0]
            assert await phone.page.evaluate(KEY_JS) == key
            assert await phone.page.get_attribute("body", "data-handed-link") == "true"
            assert await phone.page.is_hidden("#phone-share")  # no code of its own to offer
            assert "drives the link" in await phone.page.inner_text("#avatar-status")
            await snapshot(pc.page)
            await start_session(phone)
            assert await phone.page.get_attribute("#watch-link", "data-token") == token

            # The PC page sees the phone and its avatar moves with the phone's tracking.
            await pc.page.wait_for_selector("#phone-share[data-phone=watching]")
            assert "The phone is the camera" in await pc.page.inner_text("#phone-status")
            await pc.page.wait_for_function("() => Number(document.body.dataset.phoneResults) > 5")
            await wait_for_change(pc.page)
            session = await phone.page.get_attribute("body", "data-session")
            assert await pc.page.inner_text("#avatar-session") == session
            # Record on the PC keeps the phone's results, as they move its avatar (the
            # button stayed disabled with the PC's own camera off).
            await pc.page.click("#avatar-record")
            await pc.page.wait_for_function(
                "() => Number(document.getElementById('avatar-record').dataset.frames) > 3"
            )

            # The .vrm on the PC reaches the OBS view though the phone is the camera: the PC
            # page proves the link is its own by the key it handed over.
            data = renamed_vrm("The PC's own")
            await load_model(pc.page, "mine.vrm", data)
            await pc.page.check("#avatar-obs")
            await pc.page.wait_for_selector("body[data-obs-avatar=sent]", state="attached")
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{local_port}/avatar/link/{token}.vrm") as got,
            ):
                assert got.status == 200
                assert await got.read() == data

            # The phone's frames stop coming (its tab asleep, or gone without a word, its
            # link waiting out the grace): the PC page says so, and takes it back when
            # they come again.
            await phone.page.evaluate(SILENCE_JS, True)
            await pc.page.wait_for_selector("#phone-share[data-phone=quiet]")
            assert "No frames from the phone" in await pc.page.inner_text("#phone-status")
            await phone.page.evaluate(SILENCE_JS, False)
            await pc.page.wait_for_selector("#phone-share[data-phone=watching]")
            assert "The phone is the camera" in await pc.page.inner_text("#phone-status")

            # The phone stops: the PC page says so and waits for it again, and the take
            # ends with the phone's session and downloads.
            async with pc.page.expect_download() as taken:
                await phone.page.click("#avatar-stop")
                await pc.page.wait_for_selector("#phone-share[data-phone=waiting]")
                # At once, not at the next try 3 s on, which may find the phone back.
                assert await pc.page.is_disabled("#avatar-record")
                assert "has ended" in await pc.page.inner_text("#phone-status")
            lines = Path(await (await taken.value).path()).read_text(encoding="utf-8").splitlines()
            assert len(lines) > 3
            assert all(json.loads(line)["rig"]["bones"] for line in lines)
            assert pc.errors == []
            assert phone.errors == []

            # A take of the phone, and this page's own Start mid-take: the take ends there.
            # It went on with this page's own results, timed by another clock than the
            # phone's: time_ms jumped, backwards when the phone's page was opened first.
            await start_session(phone)
            await pc.page.wait_for_selector("#phone-share[data-phone=watching]")
            await pc.page.click("#avatar-record")
            await pc.page.wait_for_function(
                "() => Number(document.getElementById('avatar-record').dataset.frames) > 3"
            )
            async with pc.page.expect_download(timeout=10_000) as taken:
                await pc.page.click("#avatar-start")
            assert await pc.page.inner_text("#avatar-record") == "Record"
            lines = Path(await (await taken.value).path()).read_text(encoding="utf-8").splitlines()
            times = [json.loads(line)["time_ms"] for line in lines]
            assert len(times) > 3
            assert times == sorted(times)


# Two addresses, as a PC on Wi-Fi and a cable has; nothing listens on them.
TWO_ORIGINS = ("https://192.0.2.7:8443", "https://[2001:db8::7]:8443")
TWO_PAGES = tuple(f"{origin}/avatar" for origin in TWO_ORIGINS)


@pytest.fixture
async def plain_server(aiohttp_client: Callable[[web.Application], Awaitable[Client]]) -> Client:
    """A server without TLS that found where phones reach it, as one with TLS would."""
    return await aiohttp_client(create_app(Config(workers=1, no_cache=True), TWO_ORIGINS))


@pytest.mark.parametrize(
    ("host", "told"),
    [
        ("127.0.0.1:8081", list(TWO_ORIGINS)),
        ("localhost:8081", list(TWO_ORIGINS)),
        ("[::1]:8081", list(TWO_ORIGINS)),
        ("192.0.2.7:8443", []),
        ("holotrack.example:443", []),
    ],
)
async def test_only_a_page_on_the_servers_machine_is_told_its_phone_addresses(
    plain_server: Client, host: str, told: list[str]
) -> None:
    reply = await plain_server.get("/avatar", headers={"Host": host})
    found = ORIGINS.search(await reply.text())
    assert (found[1].split() if found else []) == told


@pytest.mark.parametrize(
    "host", ["127.0.0.1:99999", "::1", "[::1]:x", "[::1", "a b", "%00", "", "127.0.0.1:"]
)
@pytest.mark.parametrize("path", ["/avatar", "/fitness"])
async def test_a_host_header_no_url_can_hold_still_gets_the_page(
    plain_server: Client, path: str, host: str
) -> None:
    reply = await plain_server.get(path, headers={"Host": host})
    assert reply.status == 200, await reply.text()


@pytest.mark.browser
async def test_an_expression_refused_for_the_access_key_points_to_the_form(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]], tmp_path: Path
) -> None:
    """The PC page holds an expression on its phone's link over HTTP with its access key:
    one the server no longer takes said "send it as Authorization: Bearer KEY", words
    for scripts, under the buttons and in the form that asks for the key."""
    needs_node_modules()
    access = secrets.token_urlsafe(24)
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"name": "vtuber", "key": access}) + "\n")
    config = Config(workers=1, no_cache=True, access_keys=str(keys))
    client = await aiohttp_client(create_app(config, TWO_ORIGINS))
    async with open_page() as browser:
        page = browser.page
        await page.add_init_script("localStorage.setItem('holotrack.accessKey', 'x'.repeat(30))")
        key = await open_code(page, str(client.make_url("/avatar")))
        phone = await LiveClient.connect(client)
        await phone.hello(track="pose", fps=5, key=access, link_key=key)
        await page.wait_for_selector("#phone-share[data-phone=watching]")
        await page.click("button[data-emotion=happy]")
        await page.wait_for_selector("#avatar-emotion-status[data-kind=error]")
        said = await page.inner_text("#avatar-emotion-status")
        assert said == (
            "The expression was not held: the server refused the access key kept in this "
            "browser: enter another above."
        )
        assert "Bearer" not in await page.inner_text("#access-form")
        await phone.ws.close()
        assert [e for e in browser.errors if "WebSocket" not in e] == []


@pytest.mark.browser
async def test_with_several_addresses_the_code_follows_the_one_chosen(
    plain_server: Client,
) -> None:
    needs_node_modules()
    async with open_page() as browser:
        page = browser.page
        key = await open_code(page, str(plain_server.make_url("/avatar")))
        await page.wait_for_selector("#phone-address:visible")
        assert await page.locator("#phone-address option").all_inner_texts() == [
            "192.0.2.7:8443",
            "[2001:db8::7]:8443",
        ]
        first = read_code(await page.locator("#phone-code").screenshot())
        assert first == f"{TWO_PAGES[0]}#link_key={key}"
        await page.select_option("#phone-address", TWO_ORIGINS[1])
        second = read_code(await page.locator("#phone-code").screenshot())
        assert second == f"{TWO_PAGES[1]}#link_key={key}"
        assert TWO_PAGES[1] in await page.inner_text("#phone-page")
        # Closed and opened again (the person's Stop and Start do the same), the choice holds.
        await page.click("#phone-share summary")
        await page.click("#phone-share summary")
        assert await page.input_value("#phone-address") == TWO_ORIGINS[1]
        assert read_code(await page.locator("#phone-code").screenshot()) == second
        assert browser.errors == []


@pytest.mark.browser
async def test_without_https_the_code_says_how_and_a_mangled_key_is_not_taken(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    needs_node_modules()
    client = await aiohttp_client(create_app(Config(workers=1, no_cache=True)))
    async with open_page() as browser:
        page = browser.page
        key = await open_code(page, str(client.make_url("/avatar")))
        await page.wait_for_selector("#phone-status:not([hidden])")
        assert "--self-signed" in await page.inner_text("#phone-status")
        assert await page.locator("#phone-code svg").count() == 0

        # A key cut short on its way: refused in words, the page's own key kept.
        await page.goto("about:blank")  # else only the fragment changes, and nothing loads
        await page.goto(str(client.make_url("/avatar")) + "#link_key=" + key[:10])
        await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
        assert "cut short" in await page.inner_text("#avatar-notice")
        assert await page.evaluate(KEY_JS) == key
        assert await page.evaluate("() => window.location.hash") == ""
        assert browser.errors == []


@pytest.mark.browser
async def test_a_coach_in_the_room_opens_the_coach_view_from_the_athletes_code(
    tmp_path: Path,
) -> None:
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=90)
    async with on_the_network(tmp_path) as (_, offered, _):
        origin = offered[0].removesuffix("/avatar")
        async with (
            open_phone(extra_args=fake_camera_args(y4m), accept_certificate=True) as athlete,
            open_phone(accept_certificate=True) as coach,
        ):
            page = athlete.page
            token = await start_workout(page, f"{origin}/fitness")
            await page.wait_for_selector("#coach-code svg")
            link = read_code(await page.locator("#coach-code").screenshot())
            assert link == f"{origin}/coach?watch={token}"
            host = origin.removeprefix("https://")
            assert f"view at {host} on the phone" in await page.inner_text("#coach-code-words")
            # The code to type on a laptop leads to the same place: the phone's own origin.
            await page.tap("#coach-pair-offer")
            await page.wait_for_selector("#coach-pair-code[data-code]")
            assert await page.inner_text("#coach-pair-page") == f"{origin}/coach"

            await coach.page.goto(link)
            card = f'.coach-card[data-token="{token}"]'
            await coach.page.wait_for_selector(f'{card}[data-state="watching"]', state="attached")
            await coach.page.wait_for_function(
                "(card) => document.querySelector(card)?.dataset.reps !== undefined", arg=card
            )
            assert athlete.errors == []
            assert coach.errors == []


@pytest.mark.browser
@pytest.mark.parametrize("page_name", ["fitness", "avatar"])
async def test_a_code_on_show_works_again_after_the_server_restarts(
    tmp_path: Path, page_name: str
) -> None:
    """The server keeps pairing codes in memory: restarted, it had lost the one on show,
    and who typed it was told there was no such code. The fitness page, back on its kept
    link, and the avatar page, waiting for a device to be its camera, offer it again."""
    if page_name == "avatar":
        needs_node_modules()
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=90)
    port, local_port = free_port(), free_port()
    flags = (
        *("--host", "0.0.0.0", "--self-signed", "--state-dir", str(tmp_path / "state")),
        *("--local-http-port", str(local_port), "--min-session-fps", "0"),
    )
    local = f"http://127.0.0.1:{local_port}"
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        async with serving(port, *flags) as server:
            if page_name == "fitness":
                handed = {"watch": await start_workout(page, f"{local}/fitness")}
                offer = "#coach-pair-offer"
                shown = "#coach-pair-code"
            else:
                handed = {"link_key": await open_code(page, f"{local}/avatar")}
                await page.wait_for_selector("#phone-share[data-phone=waiting]")
                offer, shown = "#pair-offer", "#pair-code"
            await page.click(offer)
            await page.wait_for_selector(f"{shown}[data-code]")
            code = await page.get_attribute(shown, "data-code")
            server.proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(server.proc.wait(), 30) == 0
            if page_name == "avatar":
                # The PC page learns of a restart by trying its link while the server is
                # away (every 3 s): one back sooner goes unseen (README, known limits).
                await page.wait_for_function(
                    "() => document.getElementById('phone-status').textContent"
                    ".includes('connection to the server was lost')"
                )
        offers: list[int] = []
        offered = asyncio.Event()

        def seen(answer: Response) -> None:
            if answer.request.method == "PUT" and answer.url.endswith(f"/api/pair/{code}"):
                offers.append(answer.status)
                offered.set()

        page.on("response", seen)
        async with serving(port, *flags):
            await asyncio.wait_for(offered.wait(), 60)
            assert offers == [201]
            assert await page.get_attribute(shown, "data-code") == code
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{local}/api/pair/{code}/claim") as claimed,
            ):
                assert claimed.status == 200, await claimed.text()
                answer = await claimed.json()
                assert {name: answer[name] for name in handed} == handed, answer
    # While the server was down, Chromium logged each refused connection.
    assert all("WebSocket connection" in error for error in browser.errors), browser.errors


@pytest.mark.browser
async def test_on_the_servers_machine_the_coach_code_leads_to_its_network_address(
    plain_server: Client, tmp_path: Path
) -> None:
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=60)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        token = await start_workout(page, str(plain_server.make_url("/fitness")))
        await page.wait_for_selector("#coach-code svg")
        link = read_code(await page.locator("#coach-code").screenshot())
        # Not 127.0.0.1, which on the coach's phone is the phone itself.
        assert link == f"{TWO_ORIGINS[0]}/coach?watch={token}"
        await page.select_option("#coach-address", TWO_ORIGINS[1])
        link = read_code(await page.locator("#coach-code").screenshot())
        assert link == f"{TWO_ORIGINS[1]}/coach?watch={token}"
        assert browser.errors == []


@pytest.mark.browser
async def test_on_a_server_with_access_keys_the_code_hands_over_the_access_key_too(
    tmp_path: Path,
) -> None:
    """Under --access-keys a link stays with the access key it was opened with: a phone that
    had to type another would be refused the PC's link, and typing one on a phone is a chore.
    The PC holds the link's expression with both keys, at the strength it chose."""
    needs_node_modules()
    access = secrets.token_urlsafe(24) + "+/"  # characters a URL must escape
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"name": "vtuber", "key": access}) + "\n")
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=90)
    async with (
        on_the_network(tmp_path, "--access-keys", str(keys)) as (local_port, offered, _),
        open_page() as pc,
        open_phone(extra_args=fake_camera_args(y4m), accept_certificate=True) as phone,
    ):
        await pc.page.add_init_script(
            f"localStorage.setItem('holotrack.accessKey', {json.dumps(access)})"
        )
        key = await open_code(pc.page, f"http://127.0.0.1:{local_port}/avatar")
        await pc.page.wait_for_selector("#phone-code svg")
        handover = read_code(await pc.page.locator("#phone-code").screenshot())
        assert handover.startswith(f"{offered[0]}#link_key={key}&key=")
        assert access not in await pc.page.inner_text("#phone-share")

        await phone.page.goto(handover)
        await phone.page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
        assert await phone.page.evaluate(ACCESS_JS) == access
        assert await phone.page.evaluate(KEY_JS) == key
        assert await phone.page.evaluate("() => window.location.href") == offered[0]
        # Chosen on the PC before the phone starts: it goes with the phone's session.
        await pc.page.click("button[data-emotion=relaxed]")
        await start_session(phone)  # no key asked for, none refused
        assert await phone.page.is_hidden("#access-form")
        await pc.page.wait_for_selector("#phone-share[data-phone=watching]")
        await phone.page.wait_for_selector("body[data-emotion=relaxed]", state="attached")

        # The PC holds an expression on the phone's link (over HTTP, proved by the link's
        # key, with the access key): the phone's rig carries it and its page is told.
        await pc.page.click("button[data-emotion=happy]")
        await phone.page.wait_for_selector("body[data-emotion=happy]", state="attached")
        await pc.page.wait_for_function(
            "() => window.holotrackAvatar.expressionValue('happy') > 0.95"
        )
        assert await pc.page.get_attribute("button[data-emotion=happy]", "aria-pressed") == "true"
        # The phone's own buttons reach the PC's page through its watcher.
        await phone.page.click("button[data-emotion=sad]")
        await pc.page.wait_for_selector("body[data-emotion=sad]", state="attached")
        await pc.page.wait_for_function(
            "() => window.holotrackAvatar.expressionValue('sad') > 0.95"
        )
        # The PC's Strength holds it at half, over HTTP: the phone's slider shows it.
        await slide(pc.page, "#avatar-emotion-weight", 50)
        await phone.page.wait_for_function(
            "() => document.getElementById('avatar-emotion-weight').value === '50'"
        )
        await pc.page.wait_for_function(expression_near("sad", 0.5))
        assert await phone.page.inner_text("#avatar-emotion-weight-value") == "50%"

        # A press that cannot reach the server says so; the next press puts it away.
        await pc.page.route("**/api/emotion/**", lambda route: route.abort())
        await pc.page.click("button[data-emotion=angry]")
        await pc.page.wait_for_selector("#avatar-emotion-status:not([hidden])")
        assert "did not reach the server" in await pc.page.inner_text("#avatar-emotion-status")
        await pc.page.unroute("**/api/emotion/**")
        # One that fails only after its phone has stopped was sent on a road now closed:
        # the PC's buttons are its own session's again, and nothing is said.
        stopped = asyncio.Event()

        async def fail_once_stopped(route: Route) -> None:
            await stopped.wait()
            await route.abort()

        await pc.page.route("**/api/emotion/**", fail_once_stopped)
        # Playwright may report the failure before the page's press has heard of it.
        await pc.page.evaluate(
            """() => {
                 const fetch = window.fetch;
                 window.failedFetches = 0;
                 window.fetch = (...args) => {
                   const answer = fetch(...args);
                   // After the page's own handlers of the failure, run as it rejects.
                   answer.catch(() => setTimeout(() => { window.failedFetches += 1; }));
                   return answer;
                 };
               }"""
        )
        await pc.page.click("button[data-emotion=surprised]")
        assert await pc.page.is_hidden("#avatar-emotion-status")
        await phone.page.click("#avatar-stop")
        await pc.page.wait_for_selector("#phone-share[data-phone=waiting]")
        stopped.set()
        await pc.page.wait_for_function("() => window.failedFetches === 1")
        assert await pc.page.is_hidden("#avatar-emotion-status")
        assert pc.errors == []
        assert phone.errors == []


# The page's width and a code's right edge, in CSS pixels: a phone's browser widens its
# layout to content that sticks out (innerWidth with it), so they are held to the screen's.
EDGES_JS = """(selector) => [
  document.documentElement.scrollWidth,
  Math.ceil(document.querySelector(selector).getBoundingClientRect().right),
]"""


@pytest.mark.browser
async def test_the_codes_fit_a_small_phones_screen(plain_server: Client, tmp_path: Path) -> None:
    needs_node_modules()
    viewport = (320, 640)  # the narrowest phones in use (iPhone SE, first generation)
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=60)
    async with open_phone(viewport, fake_camera_args(y4m)) as browser:
        page = browser.page
        # An access key makes the code's address long, and the code larger than the screen.
        await page.goto(str(plain_server.make_url("/static/style.css")))
        await page.evaluate("localStorage.setItem('holotrack.accessKey', 'k'.repeat(64))")
        await open_code(page, str(plain_server.make_url("/avatar")))
        await page.wait_for_selector("#phone-code svg")
        width = await page.get_attribute("#phone-code svg", "width")
        assert int(width or 0) > viewport[0]
        width_now, right = await page.evaluate(EDGES_JS, "#phone-code svg")
        assert width_now == viewport[0]
        assert right <= viewport[0]
        # The pairing code and where to type one, with the longer of the two addresses.
        await page.select_option("#phone-address", TWO_ORIGINS[1])
        await page.tap("#pair-offer")
        await page.wait_for_selector("#pair-code[data-code]")
        await page.tap("#pair-join summary")
        for part in ("#pair-offered", "#pair-code", "#pair-form", "#pair-use"):
            width_now, right = await page.evaluate(EDGES_JS, part)
            assert (width_now, right <= viewport[0]) == (viewport[0], True), part
        await page.evaluate("localStorage.removeItem('holotrack.accessKey')")
        await page.goto(str(plain_server.make_url("/fitness")))
        await page.wait_for_selector("body[data-fitness-ready]", state="attached")
        await page.tap("#fitness-start")
        await page.wait_for_selector("#coach-share:not([hidden])")
        await page.tap("#coach-code-box summary")
        await page.wait_for_selector("#coach-code svg")
        width_now, right = await page.evaluate(EDGES_JS, "#coach-code svg")
        assert width_now == viewport[0]
        assert right <= viewport[0]
        await page.tap("#coach-pair-offer")
        await page.wait_for_selector("#coach-pair-code[data-code]")
        for part in ("#coach-pair-offer", "#coach-pair-offered", "#coach-pair-code"):
            width_now, right = await page.evaluate(EDGES_JS, part)
            assert (width_now, right <= viewport[0]) == (viewport[0], True), part
        assert browser.errors == []


@pytest.mark.browser
async def test_a_computer_that_cannot_scan_types_the_pc_pages_code(tmp_path: Path) -> None:
    """A spare computer with a webcam as the camera: it reads the PC page's pairing code off
    the screen and types it, as it cannot scan the QR code, and drives the PC page's link."""
    needs_node_modules()
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=90)
    async with (
        on_the_network(tmp_path) as (local_port, offered, _),
        open_page() as pc,
        open_page(extra_args=fake_camera_args(y4m), accept_certificate=True) as spare,
    ):
        key = await open_code(pc.page, f"http://127.0.0.1:{local_port}/avatar")
        await pc.page.wait_for_selector("#phone-share[data-phone=waiting]")
        assert await pc.page.is_hidden("#pair-offered")
        await pc.page.click("#pair-offer")
        await pc.page.wait_for_selector("#pair-code[data-code]")
        shown = await pc.page.inner_text("#pair-code")
        assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", shown), shown
        assert await pc.page.inner_text("#pair-page") == offered[0]
        assert key not in await pc.page.inner_text("#phone-share")
        token = await pc.page.get_attribute("#watch-link", "data-token")

        # The spare computer: the address it was told, then the code as a person types
        # it, a typo first.
        await spare.page.goto(offered[0])
        await spare.page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
        own_key = await spare.page.evaluate(KEY_JS)
        await spare.page.click("#pair-join summary")
        typo = shown[:-1] + ("2" if shown[-1] != "2" else "3")
        await spare.page.fill("#pair-input", typo)
        await spare.page.click("#pair-use")
        await spare.page.wait_for_selector("#pair-status[data-kind=error]")
        assert "no such pairing code" in await spare.page.inner_text("#pair-status")
        assert await spare.page.evaluate(KEY_JS) == own_key
        # A workout's code for a coach's view, typed here by mistake: said so, key kept.
        workout_code = await offer_code(local_port, {"watch": secrets.token_urlsafe(16)})
        await spare.page.fill("#pair-input", workout_code)
        assert await spare.page.is_hidden("#pair-status"), "the typo's error outlives it"
        await spare.page.click("#pair-use")
        await spare.page.wait_for_function(SAYS, arg=["#pair-status", "for a coach"])
        assert await spare.page.evaluate(KEY_JS) == own_key
        await spare.page.fill("#pair-input", shown.lower().replace("-", " "))
        await spare.page.click("#pair-use")
        await spare.page.wait_for_selector("body[data-handed-link=true]", state="attached")
        assert await spare.page.evaluate(KEY_JS) == key
        assert await spare.page.is_hidden("#phone-share")
        assert "drives the link" in await spare.page.inner_text("#avatar-status")
        await snapshot(pc.page)
        await start_session(spare)
        assert await spare.page.get_attribute("#watch-link", "data-token") == token

        await pc.page.wait_for_selector("#phone-share[data-phone=watching]")
        await pc.page.wait_for_function("() => Number(document.body.dataset.phoneResults) > 5")
        await wait_for_change(pc.page)
        assert await pc.page.is_hidden("#pair-offered")  # done with, once the device came

        async with aiohttp.ClientSession() as http:
            # Used once: the same code again is no code.
            claim = f"http://127.0.0.1:{local_port}/api/pair/{{}}/claim"
            async with http.post(claim.format(shown)) as again:
                assert again.status == 404
            # New link: the code on show led to the old one, so it goes, on the server too.
            await pc.page.click("#pair-offer")
            await pc.page.wait_for_selector("#pair-code[data-code]")
            code = await pc.page.get_attribute("#pair-code", "data-code")
            async with pc.page.expect_response(is_withdrawal):
                await pc.page.click("#watch-new")
            assert await pc.page.is_hidden("#pair-offered")
            async with http.post(claim.format(code)) as withdrawn:
                assert withdrawn.status == 404
        # The QR code now hands over the new key, and the page waits on the new link (the
        # spare computer drives the old one until it stops).
        new_key = await pc.page.evaluate(KEY_JS)
        assert new_key != key
        handover = read_code(await pc.page.locator("#phone-code").screenshot())
        assert handover == f"{offered[0]}#link_key={new_key}"
        await pc.page.wait_for_selector("#phone-share[data-phone=waiting]")
        assert pc.errors == []
        assert spare.errors == []


@pytest.mark.browser
async def test_a_code_claimed_as_start_is_pressed_is_taken_at_the_stop(
    plain_server: Client, tmp_path: Path
) -> None:
    """Use, then Start before the server has answered the code: the session runs on the
    page's own link, which stays, and the other page's link is taken once it stops."""
    needs_node_modules()
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=60)
    other = secrets.token_urlsafe(24)
    assert plain_server.port is not None
    code = await offer_code(plain_server.port, {"link_key": other})
    async with open_page(extra_args=fake_camera_args(y4m)) as browser:
        page = browser.page
        claiming, answered = asyncio.Event(), asyncio.Event()

        async def hold(route: Route) -> None:
            claiming.set()
            await answered.wait()
            await route.continue_()

        await page.route("**/api/pair/*/claim", hold)
        await page.goto(str(plain_server.make_url("/avatar")))
        await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
        own_key = await page.evaluate(KEY_JS)
        await page.click("#pair-join summary")
        await page.fill("#pair-input", code)
        await page.click("#pair-use")
        await claiming.wait()
        await start_session(browser)
        token = await page.get_attribute("#watch-link", "data-token")
        answered.set()
        await page.wait_for_function(SAYS, arg=["#pair-status", "press Stop"])
        assert await page.evaluate(KEY_JS) == own_key
        assert await page.get_attribute("body", "data-handed-link") is None
        assert await page.is_visible("#watch-share")
        assert await page.get_attribute("#watch-link", "data-token") == token

        await page.click("#avatar-stop")
        await page.wait_for_selector("body[data-handed-link=true]", state="attached")
        assert await page.evaluate(KEY_JS) == other
        assert "drives the link" in await page.inner_text("#avatar-status")
        assert await page.is_hidden("#pair-status")
        assert browser.errors == []


@pytest.mark.browser
async def test_a_code_typed_with_the_phone_section_open_lets_go_of_the_old_link(
    plain_server: Client,
) -> None:
    """A device that first opened its own "Use a phone as the camera" (and showed a code),
    then typed another page's code: its hidden section kept watching its old link for ever,
    and the code it had shown stayed alive on the server."""
    needs_node_modules()
    async with open_page() as browser:
        page = browser.page
        await open_code(page, str(plain_server.make_url("/avatar")))
        await page.wait_for_selector("#phone-share[data-phone=waiting]")
        await page.click("#pair-offer")
        await page.wait_for_selector("#pair-code[data-code]")
        own = await page.get_attribute("#pair-code", "data-code")
        port = plain_server.port
        assert port is not None
        other = await offer_code(port, {"link_key": secrets.token_urlsafe(32)})
        await page.click("#pair-join summary")
        await page.fill("#pair-input", other)
        async with page.expect_response(is_withdrawal):
            await page.click("#pair-use")
        await page.wait_for_selector("body[data-handed-link=true]", state="attached")
        assert await page.get_attribute("#phone-share", "data-phone") == "off"
        assert await page.evaluate("() => document.getElementById('phone-share').open") is False
        claimed = await plain_server.post(f"/api/pair/{own}/claim")
        assert claimed.status == 404
        assert browser.errors == []


@pytest.mark.browser
async def test_a_coachs_laptop_types_the_athletes_code(tmp_path: Path) -> None:
    """A coach in the room with a laptop, which cannot scan the QR code: the athlete's page
    shows a code, the coach types it into the coach's view, and the workout's card comes."""
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=90)
    async with (
        on_the_network(tmp_path) as (local_port, offered, _),
        open_page(extra_args=fake_camera_args(y4m)) as athlete,
        open_page(accept_certificate=True) as coach,
    ):
        page = athlete.page
        origin = offered[0].removesuffix("/avatar")
        token = await start_workout(page, f"http://127.0.0.1:{local_port}/fitness")
        await page.click("#coach-pair-offer")
        await page.wait_for_selector("#coach-pair-code[data-code]")
        shown = await page.inner_text("#coach-pair-code")
        first = await page.get_attribute("#coach-pair-code", "data-code")
        assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", shown), shown
        # Where the coach reaches the server, not this machine's loopback.
        assert await page.inner_text("#coach-pair-page") == f"{origin}/coach"

        await coach.page.goto(f"{origin}/coach")
        await coach.page.wait_for_selector("body[data-coach-ready]", state="attached")
        typo = shown[:-1] + ("2" if shown[-1] != "2" else "3")
        await coach.page.fill("#coach-links", typo)
        await coach.page.click("#coach-add")
        await coach.page.wait_for_selector("#coach-status[data-kind=error]")
        assert "no such pairing code" in await coach.page.inner_text("#coach-status")
        assert await coach.page.input_value("#coach-links") == typo  # kept, to be mended
        # An avatar page's code, for a camera, typed here by mistake: said so, no card.
        camera_code = await offer_code(local_port, {"link_key": secrets.token_urlsafe(32)})
        await coach.page.fill("#coach-links", camera_code)
        await coach.page.click("#coach-add")
        await coach.page.wait_for_function(SAYS, arg=["#coach-status", "for a camera"])
        assert await coach.page.locator(".coach-card").count() == 0
        await coach.page.fill("#coach-links", shown.lower().replace("-", " "))
        await coach.page.click("#coach-add")
        card = f'.coach-card[data-token="{token}"]'
        await coach.page.wait_for_selector(f'{card}[data-state="watching"]', state="attached")
        await coach.page.wait_for_function(
            "(card) => document.querySelector(card)?.dataset.reps !== undefined", arg=card
        )
        assert "Added 1 session." in await coach.page.inner_text("#coach-status")
        # Used, it leaves the athlete's screen (a second coach would be refused it).
        await page.wait_for_selector("#coach-pair-code:not([data-code])", state="attached")
        assert await page.is_hidden("#coach-pair-offered")
        assert "that code is used" in await page.inner_text("#coach-pair-status")

        async with aiohttp.ClientSession() as http:
            claim = f"http://127.0.0.1:{local_port}/api/pair/{{}}/claim"
            async with http.post(claim.format(shown)) as again:
                assert again.status == 404  # used once
            # Another code, then Stop: the workout is over, and so is the code.
            await page.click("#coach-pair-offer")
            await page.wait_for_selector(f"#coach-pair-code[data-code]:not([data-code='{first}'])")
            code = await page.get_attribute("#coach-pair-code", "data-code")
            async with page.expect_response(is_withdrawal):
                await page.click("#fitness-stop")
            assert await page.is_hidden("#coach-pair-offered")
            async with http.post(claim.format(code)) as withdrawn:
                assert withdrawn.status == 404
        assert athlete.errors == []
        assert coach.errors == []


# Sets window.__watched once a "watching" has come and every handler of it has run.
WATCHED_JS = """{
  const Socket = window.WebSocket;
  window.WebSocket = function (...args) {
    const socket = new Socket(...args);
    socket.addEventListener("message", (event) => {
      if (String(event.data).includes('"watching"')) setTimeout(() => (window.__watched = true));
    });
    return socket;
  };
  Object.assign(window.WebSocket, Socket);
  window.WebSocket.prototype = Socket.prototype;
}"""


async def told_watching(page: Page) -> None:
    """Waits for "watching" to have come to the page and been handled (WATCHED_JS)."""
    await page.wait_for_function("() => window.__watched === true")
    await page.evaluate("() => { window.__watched = false; }")


@pytest.mark.browser
async def test_a_pc_page_its_key_has_no_place_for_says_the_phone_may_be_there(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]], tmp_path: Path
) -> None:
    """A key with max_sessions 1: the phone's session takes the only place, and the PC page
    watching it is refused (1013, quota). It said "Waiting for the phone: scan the code"
    while the phone drove the avatar."""
    needs_node_modules()
    access = secrets.token_urlsafe(24)
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"name": "solo", "key": access, "max_sessions": 1}) + "\n")
    config = Config(workers=1, no_cache=True, access_keys=str(keys))
    client = await aiohttp_client(create_app(config, TWO_ORIGINS))
    async with open_page() as browser:
        page = browser.page
        await page.add_init_script(
            f"localStorage.setItem('holotrack.accessKey', {json.dumps(access)})"
        )
        key = await open_code(page, str(client.make_url("/avatar")))
        await page.wait_for_selector("#phone-share[data-phone=waiting]")
        phone = await LiveClient.connect(client)
        await phone.hello(track="pose", fps=5, key=access, link_key=key)
        await page.wait_for_function(SAYS, arg=["#phone-status", "max_sessions"])
        said = await page.inner_text("#phone-status")
        assert "may be the camera already" in said, said
        assert "scan the code" not in said, said
        await phone.ws.close()
        assert [e for e in browser.errors if "WebSocket" not in e] == []


@pytest.mark.browser
async def test_the_pc_pages_own_stopped_session_is_not_taken_for_a_phone(
    plain_server: Client, tmp_path: Path
) -> None:
    """The PC's own camera tried, then stopped or the page reloaded: its session rests on the
    link for the grace, and the watcher of "Use a phone" is told "watching" of it. No phone
    came, so the page still waits for one, and the code on show stays; a phone is seen."""
    needs_node_modules()
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=60)
    async with open_page(extra_args=fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.add_init_script(WATCHED_JS)
        key = await open_code(page, str(plain_server.make_url("/avatar")))
        await page.click("#pair-offer")
        await page.wait_for_selector("#pair-code[data-code]")
        await start_session(browser)
        await page.click("#avatar-stop")
        await told_watching(page)
        assert await page.get_attribute("#phone-share", "data-phone") == "waiting"
        assert "Waiting for the phone" in await page.inner_text("#phone-status")
        assert await page.is_visible("#pair-code"), "the code went before any device came"

        await page.click("#phone-share summary")
        await start_session(browser)
        await page.reload()
        await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
        await page.click("#phone-share summary")
        await told_watching(page)
        assert await page.get_attribute("#phone-share", "data-phone") == "waiting"
        assert "Waiting for the phone" in await page.inner_text("#phone-status")

        phone = await LiveClient.connect(plain_server)
        ready = await phone.hello(track="holistic", fps=5, rig=True, link_key=key)
        await page.wait_for_selector("#phone-share[data-phone=watching]")
        assert "The phone is the camera" in await page.inner_text("#phone-status")
        assert await page.inner_text("#avatar-session") == ready["session"]
        await phone.ws.close()


@pytest.mark.browser
async def test_a_code_refused_for_the_access_key_points_to_the_form(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]], tmp_path: Path
) -> None:
    """Under --access-keys, a page with no key, or one the server no longer takes, asks for
    a pairing code: it said "send it as Authorization: Bearer KEY", words for scripts,
    under the code's button and in the form that asks for the key."""
    needs_node_modules()
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"name": "vtuber", "key": secrets.token_urlsafe(24)}) + "\n")
    config = Config(workers=1, no_cache=True, access_keys=str(keys))
    client = await aiohttp_client(create_app(config, TWO_ORIGINS))
    async with open_page() as browser:
        page = browser.page
        for kept, words in ((None, "needs an access key"), ("x" * 30, "refused the access key")):
            await page.goto(str(client.make_url("/static/style.css")))
            # The section opens closed again, as on a first visit.
            await page.evaluate(
                "(key) => { sessionStorage.clear(); key"
                " ? localStorage.setItem('holotrack.accessKey', key)"
                " : localStorage.removeItem('holotrack.accessKey'); }",
                kept,
            )
            await open_code(page, str(client.make_url("/avatar")))
            await page.click("#pair-offer")
            await page.wait_for_selector("#pair-offer-status[data-kind=error]")
            said = await page.inner_text("#pair-offer-status")
            assert said.startswith("No code: "), said
            assert words in said, said
            assert "enter it above" in said or "enter another above" in said, said
            assert "Bearer" not in said
            assert "Bearer" not in await page.inner_text("#access-form")
            assert await page.is_visible("#access-form")
        assert browser.errors == []


@pytest.mark.browser
async def test_a_pc_page_reloaded_while_the_phone_drives_says_so_again(
    plain_server: Client,
) -> None:
    """Reloaded (F5, a browser's restore) while the phone drove the avatar, the PC page
    came back with "Use a phone" closed and said only "Press Start to drive the avatar with
    your webcam": a Start that takes the link from the phone mid-stream."""
    needs_node_modules()
    async with open_page() as browser:
        page = browser.page
        key = await open_code(page, str(plain_server.make_url("/avatar")))
        phone = await LiveClient.connect(plain_server)
        await phone.hello(track="holistic", fps=5, rig=True, link_key=key)
        await page.wait_for_selector("#phone-share[data-phone=watching]")
        await page.reload()
        await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
        await page.wait_for_selector("#phone-share[data-phone=watching]")
        assert "The phone is the camera" in await page.inner_text("#phone-status")
        # Closed by hand, it stays closed through the next reload.
        await page.click("#phone-share summary")
        await page.reload()
        await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
        assert await page.evaluate("() => document.getElementById('phone-share').open") is False
        await phone.ws.close()
        assert browser.errors == []


@pytest.mark.browser
async def test_settings_changed_on_the_pc_while_the_phone_drives_say_they_are_the_phones(
    plain_server: Client,
) -> None:
    """Mirror, smoothing, blendshapes and VMC receivers travel in the camera's hello, so with
    the phone as the camera the PC page's own move nothing: changed there, the page said
    nothing, its smoothing words reading as if the avatar now followed them."""
    needs_node_modules()
    async with open_page() as browser:
        page = browser.page
        key = await open_code(page, str(plain_server.make_url("/avatar")))
        phone = await LiveClient.connect(plain_server)
        ready = await phone.hello(track="holistic", fps=5, rig=True, link_key=key)
        await page.wait_for_selector("#phone-share[data-phone=watching]")
        assert await page.is_hidden("#avatar-notice")
        await page.click("#avatar-mirror")
        await page.wait_for_selector("#avatar-notice:visible")
        said = await page.inner_text("#avatar-notice")
        assert "set on the phone" in said, said
        # Nothing was started here: the phone's session still drives the link.
        assert await page.get_attribute("#avatar-stage", "data-running") == "false"
        assert await page.inner_text("#avatar-session") == ready["session"]
        await phone.ws.close()
        assert browser.errors == []


@pytest.mark.browser
@pytest.mark.parametrize("typed", ["K7QM-2XD0", "k7qm 2xdo", "K7QM-1XDA"])
async def test_a_code_typed_with_a_character_no_code_has_is_told_which(
    plain_server: Client, typed: str
) -> None:
    """A 0 typed for a D or an O is eight letters and digits still: "a code is 8 letters and
    digits" read as if the code were right. The words name what a code never has."""
    needs_node_modules()
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(plain_server.make_url("/avatar")))
        await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
        await page.click("#pair-join summary")
        await page.fill("#pair-input", typed)
        await page.click("#pair-use")
        await page.wait_for_selector("#pair-status[data-kind=error]")
        assert "no 0, O, 1, I or L" in await page.inner_text("#pair-status")
        assert browser.errors == []


@pytest.mark.browser
async def test_a_code_that_cannot_reach_the_server_says_so(plain_server: Client) -> None:
    """The device's network gone as a code is typed, or the page's as it asks for one: the
    browser's own "Failed to fetch." was all either said."""
    needs_node_modules()
    async with open_page() as browser:
        page = browser.page
        await open_code(page, str(plain_server.make_url("/avatar")))
        await page.route("**/api/pair/**", lambda route: route.abort("internetdisconnected"))
        await page.click("#pair-offer")
        await page.wait_for_selector("#pair-offer-status[data-kind=error]")
        offered = await page.inner_text("#pair-offer-status")
        assert offered.startswith("No code: could not reach the server: check"), offered
        await page.click("#pair-join summary")
        await page.fill("#pair-input", "K7QM-2XDA")
        await page.click("#pair-use")
        await page.wait_for_selector("#pair-status[data-kind=error]")
        claimed = await page.inner_text("#pair-status")
        assert claimed.startswith("could not reach the server: check"), claimed
        assert [e for e in browser.errors if "ERR_INTERNET_DISCONNECTED" not in e] == []


# Counts the closes that found no session on the link (4003), once the page has handled each.
UNKNOWN_LINK_JS = """{
  const Socket = window.WebSocket;
  window.__unknownLink = 0;
  window.WebSocket = function (...args) {
    const socket = new Socket(...args);
    socket.addEventListener("close", (event) => {
      if (event.code === 4003) setTimeout(() => (window.__unknownLink += 1));
    });
    return socket;
  };
  Object.assign(window.WebSocket, Socket);
  window.WebSocket.prototype = Socket.prototype;
}"""


@pytest.mark.browser
async def test_a_phone_away_past_the_grace_is_not_sent_to_scan_the_code_again(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    """The phone drove the link, then its screen locked (its page paused, 4002) for longer
    than the server's grace. The PC page then said "scan the code with it": the phone keeps
    the link's key and goes on with it by itself once shown again, so no code is needed."""
    needs_node_modules()
    config = Config(workers=1, no_cache=True, watch_grace=1.0)
    client = await aiohttp_client(create_app(config, TWO_ORIGINS))
    async with open_page() as browser:
        page = browser.page
        await page.add_init_script(UNKNOWN_LINK_JS)
        key = await open_code(page, str(client.make_url("/avatar")))
        await page.wait_for_selector("#phone-share[data-phone=waiting]")
        assert "scan the code" in await page.inner_text("#phone-status")
        phone = await LiveClient.connect(client)
        await phone.hello(track="holistic", fps=5, rig=True, link_key=key)
        await page.wait_for_selector("#phone-share[data-phone=watching]")
        before = await page.evaluate("() => window.__unknownLink")
        await phone.ws.close(code=4002, message=b"paused")
        # The grace ends the link's session, and the page's next try finds none on it.
        await page.wait_for_function("(n) => window.__unknownLink > n", arg=before)
        said = await page.inner_text("#phone-status")
        assert "scan the code" not in said, said
        assert "nothing to scan again" in said, said
        assert await page.get_attribute("#phone-share", "data-phone") == "waiting"

        # The phone back on its link: the page says it drives again.
        again = await LiveClient.connect(client)
        await again.hello(track="holistic", fps=5, rig=True, link_key=key)
        await page.wait_for_selector("#phone-share[data-phone=watching]")
        assert "The phone is the camera" in await page.inner_text("#phone-status")
        await again.ws.close()
        # Its Stop ends the session the page watched: said as the phone's, not in the OBS
        # view's words ("the session this view watches").
        await page.wait_for_function(
            "() => document.getElementById('phone-status').textContent.includes('has ended')"
        )
        said = await page.inner_text("#phone-status")
        assert said.startswith("The phone\u2019s session has ended"), said
        assert browser.errors == []
