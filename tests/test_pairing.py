"""Pairing codes: a page's link key handed to a device that types a short code instead of
scanning a QR code, or a workout's watch token to a coach's laptop (webapp/live/pairing.py,
webapp/pairing_view.py). The store on its own clock, then the routes of a real server."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests.browser import open_page
from tests.conftest import Client, MakeClient
from tests.live import LiveClient, when_resting
from tests.test_access import KEY_A, KEY_C, RECORDS, auth, keys_file
from webapp.config import Config
from webapp.keys import ACCESS, LIVE, METRICS, SESSIONS
from webapp.live import pairing
from webapp.live.errors import SessionClosed
from webapp.live.pairing import (
    ALPHABET,
    LENGTH,
    MAX_ADDRESSES,
    MAX_CODES,
    PER_ADDRESS,
    PER_SITE,
    SITE_TRIES,
    TRIES,
    Link,
    PairingCodes,
    TooMany,
    TooManyTries,
    TooManyTrying,
    Watch,
    normalized,
)
from webapp.live.sites import site_of
from webapp.live.watch_tokens import kept_token
from webapp.protocol import Close


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


DRAWN: set[str] = {"K7QM2XDA"}  # spelled out where a test needs a known code


def a_code() -> str:
    """A random code no other call gave: two equal by chance would make a test flaky."""
    while (code := "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))) in DRAWN:
        pass
    DRAWN.add(code)
    return code


def a_link() -> Link:
    return Link(secrets.token_urlsafe(32), None)


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("K7QM2XDA", "K7QM2XDA"),
        ("k7qm-2xda", "K7QM2XDA"),
        (" K7QM 2XDA ", "K7QM2XDA"),
        ("K7QM2XD", None),  # one short
        ("K7QM2XDAB", None),  # one long
        ("K7QM2XD0", None),  # 0 is not in it: it reads as O
        ("K7QM2XDI", None),
        ("K7QM_2XDA", None),
        ("K7QM2XDÄ", None),
        ("", None),
        # Full-width, as an input method types them, and an ideographic space.
        ("\uff2b\uff17\uff31\uff2d\uff0d\uff12\uff38\uff24\uff21", "K7QM2XDA"),
        ("\uff4b\uff17\uff51\uff4d\u3000\uff12\uff58\uff44\uff41", "K7QM2XDA"),
        ("\uff2b\uff17\uff31\uff2d\uff12\uff38\uff24\uff10", None),
        # The dash as a kana input method (U+30FC, or its half-width U+FF70) and a phone's
        # smart punctuation (en dash, U+2011) type it.
        ("\uff2b\uff17\uff31\uff2d\u30fc\uff12\uff38\uff24\uff21", "K7QM2XDA"),
        ("K7QM\uff702XDA", "K7QM2XDA"),
        ("K7QM\u20132XDA", "K7QM2XDA"),
        ("K7QM\u20112XDA", "K7QM2XDA"),
    ],
)
def test_a_code_is_read_as_typed(typed: str, code: str | None) -> None:
    assert normalized(typed) == code


def test_a_code_hands_its_keys_over_once() -> None:
    codes = PairingCodes(clock=Clock())
    code, handed = a_code(), Link(secrets.token_urlsafe(32), "the page's access key")
    codes.offer(code, handed, "192.0.2.1")
    assert codes.claim(code, "192.0.2.9") == handed
    assert codes.claim(code, "192.0.2.9") is None
    assert len(codes) == 0


def test_a_code_ends_with_its_lifetime() -> None:
    clock = Clock()
    codes = PairingCodes(lifetime=600, clock=clock)
    early, late = a_code(), a_code()
    codes.offer(early, a_link(), "192.0.2.1")
    clock.now += 300
    codes.offer(late, a_link(), "192.0.2.2")
    clock.now += 300
    assert codes.claim(early, "192.0.2.9") is None
    assert codes.claim(late, "192.0.2.9") is not None


def test_only_the_newest_code_of_a_link_works() -> None:
    codes = PairingCodes(clock=Clock())
    link = a_link()
    first, second = a_code(), a_code()
    codes.offer(first, link, "192.0.2.1")
    codes.offer(second, link, "192.0.2.1")
    assert len(codes) == 1
    assert codes.claim(first, "192.0.2.9") is None
    assert codes.claim(second, "192.0.2.9") == link


def test_only_the_key_a_code_hands_over_ends_it_early() -> None:
    codes = PairingCodes(clock=Clock())
    code, link = a_code(), a_link()
    codes.offer(code, link, "192.0.2.1")
    assert not codes.withdraw(code, secrets.token_urlsafe(32))
    assert not codes.withdraw(a_code(), link.key)
    assert len(codes) == 1
    assert codes.withdraw(code, link.key)
    assert codes.claim(code, "192.0.2.9") is None


def test_a_watch_tokens_code_is_a_code_like_any_other() -> None:
    """The same page may offer its link and its coach's view at once; each newest code of
    a secret replaces its own older one only, and only its secret withdraws it."""
    codes = PairingCodes(clock=Clock())
    link, watch = a_link(), Watch(secrets.token_urlsafe(16))
    first, second, link_code = a_code(), a_code(), a_code()
    codes.offer(first, watch, "192.0.2.1")
    codes.offer(link_code, link, "192.0.2.1")
    codes.offer(second, watch, "192.0.2.1")
    assert len(codes) == 2
    assert codes.claim(first, "192.0.2.9") is None
    assert not codes.withdraw(second, link.key)
    assert codes.claim(second, "192.0.2.9") == watch
    assert codes.withdraw(link_code, link.key)


# Codes offered `gap` s apart: the refusal's Retry-After runs until the oldest ends, in
# whole seconds up (rounded down, 598.4 s said 598, and a client that waited as told was
# refused again).
@pytest.mark.parametrize(("gap", "retry_after"), [(10, 560), (0.4, 599)])
def test_an_address_fills_only_its_share_of_the_table(gap: float, retry_after: int) -> None:
    clock = Clock()
    codes = PairingCodes(lifetime=600, clock=clock)
    for _ in range(PER_ADDRESS):
        codes.offer(a_code(), a_link(), "192.0.2.1")
        clock.now += gap
    with pytest.raises(TooMany) as refused:
        codes.offer(a_code(), a_link(), "192.0.2.1")
    assert refused.value.retry_after == retry_after
    codes.offer(a_code(), a_link(), "192.0.2.2")  # another address is not held up
    clock.now += refused.value.retry_after
    codes.offer(a_code(), a_link(), "192.0.2.1")


def test_the_table_is_bounded() -> None:
    codes = PairingCodes(clock=Clock())
    for number in range(MAX_CODES):
        codes.offer(
            a_code() if number else "K7QM2XDA", a_link(), f"10.0.{number // 256}.{number % 256}"
        )
    with pytest.raises(TooMany):
        codes.offer(a_code(), a_link(), "192.0.2.1")
    assert codes.claim("K7QM2XDA", "192.0.2.9") is not None
    codes.offer(a_code(), a_link(), "192.0.2.1")


def test_wrong_codes_from_one_address_are_stopped_for_a_lifetime() -> None:
    clock = Clock()
    codes = PairingCodes(lifetime=600, clock=clock)
    right = a_code()
    codes.offer(right, a_link(), "192.0.2.1")
    for _ in range(TRIES):
        assert codes.claim(a_code(), "203.0.113.5") is None
    # Now even the right code is refused to that address, and only to it.
    with pytest.raises(TooMany) as refused:
        codes.claim(right, "203.0.113.5")
    assert refused.value.retry_after == 600
    assert codes.claim(a_code(), "192.0.2.9") is None
    clock.now += 600  # the right code is over too by then: the page shows another
    fresh = a_code()
    codes.offer(fresh, a_link(), "192.0.2.1")
    assert codes.claim(fresh, "203.0.113.5") is not None


def test_offers_are_guesses_too_and_draw_on_the_same_budget() -> None:
    """An offer's 409 says a code is alive: offering one code after another with the same
    key (each replacing the last, so the four per address never fill) was a way to guess
    without a wrong claim."""
    clock = Clock()
    codes = PairingCodes(lifetime=600, clock=clock)
    link = a_link()
    for _ in range(TRIES - 2):
        codes.offer(a_code(), link, "203.0.113.5")
    assert codes.claim(a_code(), "203.0.113.5") is None
    codes.offer(a_code(), link, "203.0.113.5")
    with pytest.raises(TooManyTries):
        codes.offer(a_code(), link, "203.0.113.5")
    with pytest.raises(TooManyTries):
        codes.claim(a_code(), "203.0.113.5")
    codes.offer(a_code(), link, "192.0.2.1")  # another address has its own
    clock.now += 600
    codes.offer(a_code(), link, "203.0.113.5")


def test_the_table_of_tries_is_bounded_and_never_forgets_one_out_of_tries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A security review cycled 4097 IPv6 /64s, one wrong claim each: the quietest address,
    out of tries, was forgotten and had 20 more. Refusing every newcomer instead, 16,384
    addresses with one wrong claim each kept everyone else from pairing (a second review).
    Now the quietest with tries left makes room, and only a table of addresses all out of
    tries makes a newcomer wait."""
    monkeypatch.setattr(pairing, "MAX_ADDRESSES", 3)
    clock = Clock()
    codes = PairingCodes(lifetime=600, clock=clock)
    for _ in range(TRIES):
        assert codes.claim(a_code(), "203.0.113.5") is None
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        assert codes.claim(a_code(), address) is None  # each pushes out the one before
    with pytest.raises(TooManyTries):
        codes.claim(a_code(), "203.0.113.5")
    for address, more in (("10.0.0.3", TRIES - 1), ("10.0.0.4", TRIES)):
        for _ in range(more):
            assert codes.claim(a_code(), address) is None
    clock.now += 100
    with pytest.raises(TooManyTrying) as waiting:
        codes.claim(a_code(), "192.0.2.77")
    assert waiting.value.retry_after == 500
    clock.now += 500  # the first address's tries are over: it makes room
    assert codes.claim(a_code(), "192.0.2.77") is None


def test_a_table_full_of_one_try_each_still_lets_people_pair() -> None:
    codes = PairingCodes(lifetime=600, clock=Clock())
    for number in range(MAX_ADDRESSES):
        assert (
            codes.claim(a_code(), f"10.{number // 65536}.{number // 256 % 256}.{number % 256}")
            is None
        )
    code, link = a_code(), a_link()
    codes.offer(code, link, "192.0.2.1")
    assert codes.claim(code, "192.0.2.2") == link


def test_an_ipv6_site_has_a_budget_and_a_share_of_its_own() -> None:
    """A home's 256 /64s, each a client, multiplied one client's guesses (and filled the
    table four codes each); its /56 counts them all, a few clients' worth."""
    clock = Clock()
    codes = PairingCodes(lifetime=600, clock=clock)
    site = [f"2001:db8:7:{n:x}::/64" for n in range(SITE_TRIES // TRIES + 1)]
    for address in site[:-1]:
        for _ in range(TRIES):
            assert codes.claim(a_code(), address) is None
    with pytest.raises(TooManyTries):
        codes.claim(a_code(), site[-1])
    assert codes.claim(a_code(), "2001:db8:8::/64") is None  # another site
    clock.now += 600
    for n in range(PER_SITE):
        codes.offer(a_code(), a_link(), site[n // PER_ADDRESS])
    with pytest.raises(TooMany):
        codes.offer(a_code(), a_link(), site[-1])
    codes.offer(a_code(), a_link(), "2001:db8:8::/64")
    assert site_of("2001:db8:7:1::/64") == "2001:db8:7::/56"
    assert site_of("2001:db8:7:100::/64") == "2001:db8:7:100::/56"  # the next home
    assert site_of("192.0.2.1") is None
    assert site_of("not an address") is None


async def test_a_typed_code_makes_a_device_the_camera_of_the_pages_link(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Under --access-keys: the page offers with its key, the device claims with none and
    gets the link key and that access key, and its session drives the page's link."""
    keys = str(keys_file(tmp_path))
    client = await make_client(Config(workers=1, no_cache=True, access_keys=keys))
    link_key = secrets.token_urlsafe(32)
    code = a_code()
    body = {"link_key": link_key}
    keyless = await client.put(f"/api/pair/{code}", json=body)
    assert keyless.status == 401
    offered = await client.put(f"/api/pair/{code}", json=body, headers=auth(KEY_A))
    assert offered.status == 201, await offered.text()
    assert await offered.json() == {"code": code, "expires_in": 600}
    assert offered.headers["Cache-Control"] == "no-store"
    # Another page that drew the same code draws again.
    other = {"link_key": secrets.token_urlsafe(32)}
    again = await client.put(f"/api/pair/{code}", json=other, headers=auth(KEY_A))
    assert (again.status, (await again.json())["error"]) == (409, "code_taken")

    # As typed: lower case, with a dash.
    typed = f"{code[:4]}-{code[4:]}".lower()
    claimed = await client.post(f"/api/pair/{typed}/claim")
    assert claimed.status == 200, await claimed.text()
    assert await claimed.json() == {"link_key": link_key, "key": KEY_A}
    assert claimed.headers["Cache-Control"] == "no-store"
    twice = await client.post(f"/api/pair/{code}/claim")
    assert (twice.status, (await twice.json())["error"]) == (404, "unknown_code")
    # Behind several replicas nginx routes a code by its text: lower case may have gone
    # to another replica than the offer's, so a replica without it sends it on as the
    # pages spell it, where nginx routes it to the offer's replica (test_cluster).
    lower = await client.post(f"/api/pair/{typed}/claim", allow_redirects=False)
    assert (lower.status, lower.headers["Location"]) == (307, f"/api/pair/{code}/claim")
    assert (await lower.json())["error"] == "unknown_code"
    followed = await client.post(f"/api/pair/{typed}/claim")
    assert (followed.status, followed.url.path) == (404, f"/api/pair/{code}/claim")

    device = await LiveClient.connect(client)
    ready = await device.hello(track="pose", fps=5, key=KEY_A, link_key=link_key)
    assert ready["watch"] == kept_token(link_key)
    await device.ws.close()


async def test_a_code_offered_with_a_key_removed_since_hands_nothing_over(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A reload (SIGHUP) removed the key the page offered with: the device was handed that
    key, took it for its own, and every session of it was refused 4401 for a reason it
    could not see. The claim says why instead, and a current key's code still works."""
    keys = keys_file(tmp_path)
    client = await make_client(Config(workers=1, no_cache=True, access_keys=str(keys)))
    removed, kept = a_code(), a_code()
    for code, key in ((removed, KEY_A), (kept, KEY_C)):
        body = {"link_key": secrets.token_urlsafe(32)}
        offered = await client.put(f"/api/pair/{code}", json=body, headers=auth(key))
        assert offered.status == 201, await offered.text()
    keys_file(tmp_path, [r for r in RECORDS if r["key"] != KEY_A])
    assert client.app[ACCESS].reload()
    refusals = client.app[METRICS].registry.get_sample_value(
        "holotrack_key_refusals_total", {"key": "-", "reason": "wrong_key"}
    )

    claimed = await client.post(f"/api/pair/{removed}/claim")
    assert claimed.status == 403
    body = await claimed.json()
    assert body["error"] == "key_removed"
    assert "no longer accepts" in body["detail"]
    assert KEY_A not in await claimed.text()
    # The server's own check is no guess at a key: the alert on wrong keys stays quiet.
    assert refusals == client.app[METRICS].registry.get_sample_value(
        "holotrack_key_refusals_total", {"key": "-", "reason": "wrong_key"}
    )
    counted = client.app[METRICS].registry.get_sample_value(
        "holotrack_pairing_claims_total", {"outcome": "key_removed"}
    )
    assert counted == 1
    still = await client.post(f"/api/pair/{kept}/claim")
    assert still.status == 200
    assert (await still.json())["key"] == KEY_C


async def test_a_typed_code_opens_a_coachs_view_of_the_workout(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Under --access-keys, the fitness page offers its workout's watch token with its key;
    the coach's laptop claims it with none, gets the token alone (no access key: watching
    needs none), and watches the workout with it (counted against the athlete's key: KEY_C
    holds two sessions)."""
    keys = str(keys_file(tmp_path))
    client = await make_client(Config(workers=1, no_cache=True, access_keys=keys))
    athlete = await LiveClient.connect(client)
    ready = await athlete.hello(track="pose", fps=5, key=KEY_C, exercise="squat")
    code = a_code()
    body = {"watch": ready["watch"]}
    assert (await client.put(f"/api/pair/{code}", json=body)).status == 401
    offered = await client.put(f"/api/pair/{code}", json=body, headers=auth(KEY_C))
    assert offered.status == 201, await offered.text()

    claimed = await client.post(f"/api/pair/{code.lower()}/claim")
    assert claimed.status == 200, await claimed.text()
    assert await claimed.json() == {"watch": ready["watch"]}
    assert claimed.headers["Cache-Control"] == "no-store"
    # The athlete's page is told, to take the code off its screen.
    assert await athlete.next_of("paired") == {"type": "paired", "code": code}
    coach = await client.ws_connect("/ws")
    await coach.send_json({"type": "watch", "version": 1, "token": ready["watch"]})
    watching = await coach.receive_json()
    assert watching == {"type": "watching", "session": ready["session"]}
    await coach.close()
    await athlete.ws.close()
    # Withdrawn by the token it hands over, in its own header.
    again = a_code()
    assert (await client.put(f"/api/pair/{again}", json=body, headers=auth(KEY_C))).status == 201
    stranger = {"Holotrack-Watch-Token": secrets.token_urlsafe(16)} | auth(KEY_C)
    assert (await client.delete(f"/api/pair/{again}", headers=stranger)).status == 204
    assert len(client.app[LIVE].pairing) == 1
    token_header = {"Holotrack-Watch-Token": ready["watch"]} | auth(KEY_C)
    assert (await client.delete(f"/api/pair/{again}", headers=token_header)).status == 204
    assert (await client.post(f"/api/pair/{again}/claim")).status == 404


async def test_a_camera_away_when_its_code_is_used_is_told_when_it_comes_back(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A phone showing the coach's code sleeps (its page pauses, 4002); the coach claims
    the code meanwhile. The page's next session hears it, so the used code leaves its
    screen instead of staying there for its ten minutes."""
    client = await make_client(Config(workers=1))
    athlete = await LiveClient.connect(client)
    ready = await athlete.hello(track="pose", fps=5, exercise="squat")
    code = a_code()
    assert (await client.put(f"/api/pair/{code}", json={"watch": ready["watch"]})).status == 201
    rested = when_resting(client.app[LIVE].tokens, monkeypatch)
    await athlete.ws.close(code=4002, message=b"paused")
    async with asyncio.timeout(30):
        await rested.wait()

    claimed = await client.post(f"/api/pair/{code}/claim")
    assert await claimed.json() == {"watch": ready["watch"]}
    back = await LiveClient.connect(client)
    resumed = await back.hello(track="pose", fps=5, exercise="squat", resume=ready["resume"])
    assert resumed["watch"] == ready["watch"]
    assert await back.next_of("paired") == {"type": "paired", "code": code}
    # Told once: the session after it hears nothing of that code.
    await back.ws.close(code=4002, message=b"paused")
    again = LiveClient(await client.ws_connect("/ws"))
    await again.hello(track="pose", fps=5, exercise="squat", resume=resumed["resume"])
    await again.ws.send_json({"type": "summary"})
    assert (await again.next_of("paired", "workout"))["type"] == "workout"
    await again.ws.close()


async def test_a_code_claimed_as_the_server_ends_the_camera_is_owed_to_its_next_session(
    make_client: MakeClient,
) -> None:
    """Ended by the server (a dead worker's 1011, which the page resumes), the camera's
    session holds its control outbox until its reader lets go: a claim in that moment went
    into an outbox that sends nothing more, and the used code stayed on the screen."""
    client = await make_client(Config(workers=1))
    athlete = await LiveClient.connect(client)
    ready = await athlete.hello(track="pose", fps=5, exercise="squat")
    (session,) = client.app[SESSIONS]
    audience = client.app[LIVE].tokens.find(ready["watch"])
    assert audience is not None
    session.end(SessionClosed(Close.INTERNAL, "the test's worker died"))
    audience.tell_camera('{"type": "paired", "code": "K7QM2XDA"}')
    assert (await athlete.closed())[0] == Close.INTERNAL
    back = await LiveClient.connect(client)
    await back.hello(track="pose", fps=5, exercise="squat", resume=ready["resume"])
    assert await back.next_of("paired") == {"type": "paired", "code": "K7QM2XDA"}
    await back.ws.close()


ONE_OF = 'the body must be {"link_key": KEY} or {"watch": TOKEN}, one of them'


async def test_a_code_its_page_took_back_is_refused_with_that_reason(
    make_client: MakeClient,
) -> None:
    """A page left or reloaded ends its code (DELETE): typed a moment later from the screen,
    it was refused as "used already, or over 10 minutes old, or mistyped", none of which
    was the case."""
    client = await make_client(Config(workers=1, no_cache=True))
    code, link_key = a_code(), secrets.token_urlsafe(32)
    assert (await client.put(f"/api/pair/{code}", json={"link_key": link_key})).status == 201
    withdrawn = await client.delete(f"/api/pair/{code}", headers={"Holotrack-Link-Key": link_key})
    assert withdrawn.status == 204
    claimed = await client.post(f"/api/pair/{code}/claim")
    assert claimed.status == 404
    body = await claimed.json()
    assert body["error"] == "unknown_code"
    assert "took it back (left, reloaded" in body["detail"]


@pytest.mark.parametrize(
    ("path", "body", "status", "detail"),
    [
        ("/api/pair/K7QM2XD0", {"link_key": "x" * 43}, 400, "pairing code is 8 characters"),
        ("/api/pair/K7QM2XDA", {"link_key": "short"}, 400, ONE_OF),
        ("/api/pair/K7QM2XDA", {"link_key": "x" * 42 + "é"}, 400, ONE_OF),
        ("/api/pair/K7QM2XDA", {"watch": "x" * 21}, 400, ONE_OF),
        ("/api/pair/K7QM2XDA", {"watch": 12345678901234567890123}, 400, ONE_OF),
        ("/api/pair/K7QM2XDA", {"link_key": "x" * 43, "watch": "y" * 22}, 400, ONE_OF),
        ("/api/pair/K7QM2XDA", {"key": "x" * 43}, 400, ONE_OF),
        ("/api/pair/K7QM2XDA", ["x" * 43], 400, ONE_OF),
        ("/api/pair/K7QM2XDA", b"{", 400, "the body must be JSON"),
        ("/api/pair/K7QM2XDA", b"[" * 1000, 400, "the body must be JSON"),
        ("/api/pair/K7QM2XDA", b"x" * 2000, 413, "body"),
    ],
)
async def test_a_bad_offer_is_refused_in_words(
    make_client: MakeClient, path: str, body: object, status: int, detail: str
) -> None:
    client = await make_client(Config(workers=1, no_cache=True))
    if isinstance(body, bytes):
        answer = await client.put(path, data=body)
    else:
        answer = await client.put(path, json=body)
    assert answer.status == status
    assert detail in (await answer.json())["detail"]
    assert len(client.app[LIVE].pairing) == 0


async def after_wrong_claims(
    client: Client, headers: dict[str, str], wrong: Callable[[], str], last: str
) -> aiohttp.ClientResponse:
    """TRIES claims of `wrong()` codes from one address, each 404; then `last`, refused 429."""
    for _ in range(TRIES):
        answer = await client.post(f"/api/pair/{wrong()}/claim", headers=headers)
        assert answer.status == 404
    refused = await client.post(f"/api/pair/{last}/claim", headers=headers)
    assert refused.status == 429
    return refused


async def test_guessing_codes_is_stopped_and_says_when_to_come_back(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1, no_cache=True, trust_proxy=True))
    link_key = secrets.token_urlsafe(32)
    code = a_code()
    assert (await client.put(f"/api/pair/{code}", json={"link_key": link_key})).status == 201
    guesser = {"X-Forwarded-For": "203.0.113.5"}
    refused = await after_wrong_claims(client, guesser, a_code, code)
    assert (await refused.json())["error"] == "too_many_tries"
    retry_after = int(refused.headers["Retry-After"])
    assert retry_after > 0
    # Said in words too: the pages show the detail, and "wait" alone told no one how long.
    minutes = -(-retry_after // 60)
    assert f": wait {minutes} minutes, then" in (await refused.json())["detail"]
    # Ended early only with the key it hands over; 204 either way, as a code used is gone.
    other, other_key = a_code(), secrets.token_urlsafe(32)
    assert (await client.put(f"/api/pair/{other}", json={"link_key": other_key})).status == 201
    for wrong in ({}, {"Holotrack-Link-Key": "not one"}, {"Holotrack-Watch-Token": "nor"}):
        assert (await client.delete(f"/api/pair/{other}", headers=wrong)).status == 400
    stranger = {"Holotrack-Link-Key": secrets.token_urlsafe(32)}
    assert (await client.delete(f"/api/pair/{other}", headers=stranger)).status == 204
    assert len(client.app[LIVE].pairing) == 2
    owner = {"Holotrack-Link-Key": other_key}
    assert (await client.delete(f"/api/pair/{other}", headers=owner)).status == 204
    assert (await client.post(f"/api/pair/{other}/claim")).status == 404
    # A code that is no code's form is no guess, and the code still works elsewhere.
    assert (await client.post("/api/pair/nonsense/claim")).status == 400
    person = {"X-Forwarded-For": "192.0.2.9"}
    assert await metric(client, "holotrack_pairing_codes_live") == 1
    answer = await client.post(f"/api/pair/{code}/claim", headers=person)
    assert (await answer.json())["link_key"] == link_key
    assert await metric(client, "holotrack_pairing_codes_live") == 0
    for outcome, count in (("handed", 1), ("unknown", TRIES + 1), ("refused", 1)):
        series = f'holotrack_pairing_claims_total{{outcome="{outcome}"}}'
        assert await metric(client, series) == count, outcome


async def test_a_code_sent_on_in_capitals_is_a_try_here_too(make_client: MakeClient) -> None:
    """A code typed in lower case that a replica does not hold is sent on (307) to the
    replica its capitals hash to. A security review found it sent on for free: 2000
    lower-case guesses from an address out of tries, none counted, and a live code told
    apart (its claim answered 429 where others got 307). Each is a try now."""
    client = await make_client(Config(workers=1, no_cache=True, trust_proxy=True))
    live, link_key = a_code(), secrets.token_urlsafe(32)
    assert (await client.put(f"/api/pair/{live}", json={"link_key": link_key})).status == 201
    guesser = {"X-Forwarded-For": "198.51.100.7"}
    statuses = []
    for _ in range(TRIES + 1):
        path = f"/api/pair/{a_code().lower()}/claim"
        answer = await client.post(path, headers=guesser, allow_redirects=False)
        statuses.append(answer.status)
    assert statuses == [307] * TRIES + [429]
    # Out of tries, a live code is refused as a dead one is: the answer tells nothing.
    for code in (live, a_code()):
        path = f"/api/pair/{code.lower()}/claim"
        answer = await client.post(path, headers=guesser, allow_redirects=False)
        assert answer.status == 429
    # On one server the 307 comes back here and is a try again: lower case costs two.
    person = {"X-Forwarded-For": "192.0.2.10"}
    for _ in range(TRIES // 2):
        answer = await client.post(f"/api/pair/{a_code().lower()}/claim", headers=person)
        assert answer.status == 404
    assert (await client.post(f"/api/pair/{live}/claim", headers=person)).status == 429
    # The right code in lower case works for anyone with tries left.
    helper = {"X-Forwarded-For": "192.0.2.11"}
    answer = await client.post(f"/api/pair/{live.lower()}/claim", headers=helper)
    assert (await answer.json())["link_key"] == link_key
    for outcome, count in (("redirected", TRIES + 10), ("unknown", 10), ("refused", 4)):
        series = f'holotrack_pairing_claims_total{{outcome="{outcome}"}}'
        assert await metric(client, series) == count, outcome


async def test_a_page_of_another_site_cannot_spend_a_households_tries(
    make_client: MakeClient,
) -> None:
    """A claim is a simple POST: a page the person visited sent 21 from their browser
    (no-cors), and their address could not pair for 10 minutes (a security review)."""
    client = await make_client(Config(workers=1, no_cache=True))
    code, link_key = a_code(), secrets.token_urlsafe(32)
    assert (await client.put(f"/api/pair/{code}", json={"link_key": link_key})).status == 201
    elsewhere = {"Origin": "https://games.example"}
    for _ in range(TRIES + 1):
        refused = await client.post(f"/api/pair/{a_code()}/claim", headers=elsewhere)
        assert refused.status == 403
    answer = await refused.json()
    assert answer["error"] == "cross_site"
    assert "games.example" in answer["detail"]
    here = {"Origin": str(client.make_url("/")).rstrip("/")}
    claimed = await client.post(f"/api/pair/{code}/claim", headers=here)
    assert (await claimed.json())["link_key"] == link_key


async def test_too_many_clients_trying_is_its_own_429(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pairing, "MAX_ADDRESSES", 2)
    client = await make_client(Config(workers=1, no_cache=True, trust_proxy=True))
    for address in ("192.0.2.1", "192.0.2.2"):
        await after_wrong_claims(client, {"X-Forwarded-For": address}, a_code, a_code())
    answer = await client.post(
        f"/api/pair/{a_code()}/claim", headers={"X-Forwarded-For": "192.0.2.3"}
    )
    assert answer.status == 429
    assert (await answer.json())["error"] == "too_many_trying"
    assert int(answer.headers["Retry-After"]) > 0
    offer = await client.put(
        f"/api/pair/{a_code()}",
        json={"link_key": secrets.token_urlsafe(32)},
        headers={"X-Forwarded-For": "192.0.2.4"},
    )
    assert (offer.status, (await offer.json())["error"]) == (429, "too_many_trying")


async def metric(client: Client, series: str) -> float:
    text = await (await client.get("/metrics")).text()
    (line,) = [x for x in text.splitlines() if x.startswith(series + " ")]
    return float(line.split()[-1])


def test_a_newcomer_of_a_new_ipv6_site_at_the_tables_last_place_is_told_to_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An IPv6 newcomer needs two places, its /64's and its site's. With one left and every
    other entry out of tries, making room for the site forgot the /64 just added (it had
    tries left), and counting its try raised KeyError: a 500 with a traceback, not 429."""
    monkeypatch.setattr(pairing, "MAX_ADDRESSES", 3)
    clock = Clock()
    codes = PairingCodes(lifetime=600, clock=clock)
    for address in ("10.0.0.1", "10.0.0.2"):
        for _ in range(TRIES):
            assert codes.claim(a_code(), address) is None
    with pytest.raises(TooManyTrying) as waiting:
        codes.claim(a_code(), "2001:db8:1:1::/64")
    assert waiting.value.retry_after == 600
    clock.now += 600  # the tries are over: the newcomer gets its places
    assert codes.claim(a_code(), "2001:db8:1:1::/64") is None


async def test_a_code_typed_full_width_on_the_coachs_page_opens_its_card(
    make_client: MakeClient,
) -> None:
    """A Japanese or Chinese input method left on types the code full-width, its dash the
    kana long-vowel mark: the coach's page read it as no code at all ("No watch token in
    ...")."""
    client = await make_client(Config(workers=1, no_cache=True))
    athlete = await LiveClient.connect(client)
    ready = await athlete.hello(track="pose", fps=5, exercise="squat")
    code = a_code()
    offered = await client.put(f"/api/pair/{code}", json={"watch": ready["watch"]})
    assert offered.status == 201, await offered.text()
    wide = "".join(chr(ord(ch) - 0x21 + 0xFF01) for ch in code)
    typed = f"{wide[:4]}\u30fc{wide[4:]}"
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/coach")))
        await page.wait_for_selector("body[data-coach-ready]", state="attached")
        await page.fill("#coach-links", typed)
        await page.click("#coach-add")
        await page.wait_for_selector(f'.coach-card[data-token="{ready["watch"]}"]')
        assert browser.errors == []
    assert await athlete.next_of("paired") == {"type": "paired", "code": code}
    await athlete.ws.close()


def test_a_site_with_tries_left_makes_room_though_its_64s_have_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two /64s of one home out of tries have spent 40 of their site's 100: the site
    still has tries left, so when the table is full it is the one forgotten for a
    newcomer, who does not wait."""
    monkeypatch.setattr(pairing, "MAX_ADDRESSES", 3)
    codes = PairingCodes(lifetime=600, clock=Clock())
    for address in ("2001:db8:7:1::/64", "2001:db8:7:2::/64"):
        for _ in range(TRIES):
            assert codes.claim(a_code(), address) is None
    assert codes.claim(a_code(), "192.0.2.77") is None
