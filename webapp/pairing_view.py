"""Pairing codes over HTTP (live/pairing.py): PUT /api/pair/{code} by the page whose link
key or watch token it hands over (DELETE to end it early), POST /api/pair/{code}/claim by
the device that typed it.

The offer needs an access key where the server wants one, and a link key's code hands that
key on with it, as the QR code's address does; a watch token's needs none (a watcher shows
no key). The claim is public (access/http.py): the device claiming has no key yet, and the
code is its proof.
"""

from __future__ import annotations

import logging
import math

from aiohttp import web

from webapp.access.credentials import bearer
from webapp.camera_proof import LINK_KEY_HEADER
from webapp.errors import BadRequestError
from webapp.http_errors import json_error
from webapp.keys import ACCESS, CONFIG, LIVE, METRICS
from webapp.live import messages
from webapp.live.guard import client_address, origin_refusal, peer_address
from webapp.live.options import is_link_key
from webapp.live.pairing import (
    ALPHABET,
    LENGTH,
    LIFETIME_SECONDS,
    CodeTaken,
    Handed,
    Link,
    TooMany,
    TooManyTries,
    TooManyTrying,
    Watch,
    normalized,
)
from webapp.uploads import json_fields, small_body

OFFER_PATH = "/api/pair/{code}"
CLAIM_PATH = "/api/pair/{code}/claim"
# The withdrawal's proof for a watch token's code, as Holotrack-Link-Key is for a link's.
WATCH_TOKEN_HEADER = "Holotrack-Watch-Token"
KEY_FORM = "22 to 64 characters of A-Z, a-z, 0-9, - and _"
# A link key is at most 64 characters: room for it, the JSON around it and some spaces.
MAX_BODY_BYTES = 1024
NO_STORE = {"Cache-Control": "no-store"}
MINUTES = round(LIFETIME_SECONDS / 60)
# {wait}: how long, as Retry-After says; a person reading "wait" on a phone could not tell
# whether a minute or an hour.
TRIES_DETAIL = (
    f"too many pairing codes offered or mistyped from this address in {MINUTES} minutes: "
    "wait {wait}, then ask for a new code"
)
TRYING_DETAIL = "too many clients are trying pairing codes now: wait {wait}, then try again"
CODES_DETAIL = "too many pairing codes are alive: wait {wait} for one to end"

log = logging.getLogger(__name__)


def _code(request: web.Request) -> str:
    code = normalized(request.match_info["code"])
    if code is None:
        raise BadRequestError(
            f"a pairing code is {LENGTH} characters of {ALPHABET} (dashes and spaces aside)"
        )
    return code


def _wait(seconds: int) -> str:
    return f"{seconds} s" if seconds < 90 else f"{math.ceil(seconds / 60)} minutes"


def _too_many(exc: TooMany, code: str, detail: str) -> web.Response:
    words = detail.format(wait=_wait(exc.retry_after))
    return json_error(code, words, 429, {"Retry-After": str(exc.retry_after)})


def _no_tries(exc: TooManyTries | TooManyTrying) -> web.Response:
    if isinstance(exc, TooManyTrying):
        return _too_many(exc, "too_many_trying", TRYING_DETAIL)
    return _too_many(exc, "too_many_tries", TRIES_DETAIL)


async def offer(request: web.Request) -> web.Response:
    """PUT /api/pair/{code} {"link_key": KEY} or {"watch": TOKEN}: the code hands KEY or
    TOKEN to whoever claims it first, within its lifetime."""
    code = _code(request)
    body = await small_body(request, MAX_BODY_BYTES, request.app[CONFIG].upload_timeout)
    access = request.app[ACCESS]
    access_key = bearer(request.headers.get("Authorization")) if access.required else None
    handed = handed_of(body, access_key)
    address = client_address(request, request.app[CONFIG])
    try:
        lifetime = request.app[LIVE].pairing.offer(code, handed, address)
    except CodeTaken:
        return json_error("code_taken", "this code is alive already: draw another", 409)
    except (TooManyTries, TooManyTrying) as exc:
        return _no_tries(exc)
    except TooMany as exc:
        return _too_many(exc, "too_many_codes", CODES_DETAIL)
    return web.json_response(
        {"code": code, "expires_in": round(lifetime)}, status=201, headers=NO_STORE
    )


async def claim(request: web.Request) -> web.Response:
    """POST /api/pair/{code}/claim: the link key the code was offered with (and the
    offering page's access key, or null), or its watch token, once."""
    code = _code(request)
    config = request.app[CONFIG]
    # A claim is a simple POST, which any page a person visits may send from their
    # browser: 21 of them spent the address's tries, and the household behind it could
    # not pair for 10 minutes. A page of another site is refused before a try is counted.
    refusal = origin_refusal(request, config)
    if refusal is not None:
        return json_error("cross_site", f"{refusal}; claim the code from this server's pages", 403)
    address = client_address(request, config)
    claims = request.app[METRICS].pairing_claims
    pairing = request.app[LIVE].pairing
    typed = request.match_info["code"]
    if typed.replace("-", "") != code and not pairing.holds(code):
        # A proxy in front of several replicas routes a code by its text, dash or not, and
        # cannot fold case (deploy/nginx): one typed in lower case or with a space may
        # have reached another replica than its offer's. Sent again as the pages send it,
        # it goes where the offer went (307 keeps the method). It is a try here as well:
        # sent on for free, a guesser's lower-case codes cost nothing, and one this
        # replica holds answered otherwise. The pages send capitals; only an API client
        # typing in lower case pays twice.
        try:
            pairing.miss(address)
        except (TooManyTries, TooManyTrying) as exc:
            claims.labels("refused").inc()
            return _no_tries(exc)
        claims.labels("redirected").inc()
        return json_error(
            "unknown_code",
            f"no such pairing code here; ask again at {CLAIM_PATH.format(code=code)}",
            307,
            {"Location": CLAIM_PATH.format(code=code)},
        )
    try:
        handed = pairing.claim(code, address)
    except (TooManyTries, TooManyTrying) as exc:
        claims.labels("refused").inc()
        return _no_tries(exc)
    if handed is None:
        claims.labels("unknown").inc()
        return json_error(
            "unknown_code",
            # A page takes its code back when left, reloaded or given a new link: the
            # reasons without it sent a person whose code was on screen a moment ago
            # looking for a typo.
            f"no such pairing code: it was used already, or is over {MINUTES} minutes old, "
            "or the page that showed it took it back (left, reloaded, closed its code or "
            "made a new link), or mistyped; ask that page for a new one",
            404,
        )
    key = handed.access_key if isinstance(handed, Link) else None
    if key is not None and not request.app[ACCESS].accepts(key):
        # A reload removed the key the page offered with: handed on, it had the device
        # adopt a key every session of it is refused (4401), and the code was used up.
        claims.labels("key_removed").inc()
        return json_error(
            "key_removed",
            "the page that offered this code did so with an access key this server no "
            "longer accepts: that page needs a current key, then a new code",
            403,
        )
    claims.labels("handed").inc()
    if isinstance(handed, Watch):
        log.info("a pairing code handed a watch token to %s", peer_address(request, config))
        # The page showing the code takes it off the screen: it works once.
        audience = request.app[LIVE].tokens.find(handed.token)
        if audience is not None:
            audience.tell_camera(messages.paired(code))
        return web.json_response({"watch": handed.token}, headers=NO_STORE)
    log.info("a pairing code handed a link key to %s", peer_address(request, config))
    return web.json_response({"link_key": handed.key, "key": handed.access_key}, headers=NO_STORE)


async def withdraw(request: web.Request) -> web.Response:
    """DELETE /api/pair/{code} with what it hands over, as Holotrack-Link-Key or
    Holotrack-Watch-Token: the code ends now (the page's code was closed, used, or its link
    renewed). 204 whether or not it was alive, as a code used or over is gone as well."""
    code = _code(request)
    headers = request.headers
    name = WATCH_TOKEN_HEADER if WATCH_TOKEN_HEADER in headers else LINK_KEY_HEADER
    secret = headers.get(name, "")
    if not is_link_key(secret):
        raise BadRequestError(
            f"{LINK_KEY_HEADER} or {WATCH_TOKEN_HEADER} must be the link key or watch token "
            f"the code hands over: {KEY_FORM}"
        )
    request.app[LIVE].pairing.withdraw(code, secret)
    return web.Response(status=204)


def handed_of(body: bytes, access_key: str | None) -> Handed:
    """A watch token has a link key's form (token_urlsafe(16), or a kept link's digest)."""
    link_key, watch = json_fields(body, "link_key", "watch")
    if watch is None and is_link_key(link_key):
        return Link(link_key, access_key)
    if link_key is None and is_link_key(watch):
        return Watch(watch)
    raise BadRequestError(
        f'the body must be {{"link_key": KEY}} or {{"watch": TOKEN}}, one of them, each {KEY_FORM}'
    )
