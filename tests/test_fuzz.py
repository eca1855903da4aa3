"""Fuzzing every parser the outside reaches: a valid result or exactly the documented error.

The property tests call the parsers directly (no app, no model); the last test sends
seeded hostile uploads and message sequences through one real app and then checks that
ordinary requests still work.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import random
import string
import struct
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp
import numpy as np
import pytest
from aiohttp import WebSocketError
from aiohttp.helpers import parse_content_type
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import Client, MakeClient
from tests.corpus import (
    HEADER_BYTES,
    MUTATION_KINDS,
    Mutation,
    mutate,
    random_mutations,
    seeds,
)
from tests.live import LiveClient, frame_message, raw_ws_connect, video_frames, ws_frame
from tests.media import ASL_VIDEO, PERSON_JPEG, png_declaring
from webapp.analysis.rig.emotion import EMOTIONS
from webapp.config import Config
from webapp.content_types import NEUTRAL_TYPES
from webapp.emotion_view import emotion_of
from webapp.engine import imaging
from webapp.engine.jobs import Frame
from webapp.errors import (
    BadRequestError,
    EmptyInputError,
    HolotrackError,
    NotAnImageError,
    TooManyPixelsError,
    UnsupportedTypeError,
)
from webapp.http_errors import STATUS
from webapp.keys import METRICS, SCHEDULER, SESSIONS
from webapp.live.end_view import resume_of
from webapp.live.errors import SessionClosed
from webapp.live.messages import (
    MAGIC,
    Control,
    Hello,
    first_message,
    parse_control,
    parse_frame,
    parse_hello,
)
from webapp.live.options import is_link_key
from webapp.live.pairing import ALPHABET, LENGTH, Handed, Link, normalized
from webapp.live.receiver import read_error
from webapp.pairing_view import handed_of
from webapp.protocol import FRAME_HEADER, Close, Track
from webapp.still import uploads

T = TypeVar("T")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEAVY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SWEEP = 5000
# A close frame carries 123 bytes of reason; the server cuts its reasons to 120.
REASON_BYTES = 120
# What probe and decode may raise: each has its status and its code, nothing else escapes.
IMAGE_ERRORS = (EmptyInputError, NotAnImageError, UnsupportedTypeError, TooManyPixelsError)


def attempt(call: Callable[[], T], errors: tuple[type[Exception], ...]) -> T | Exception:
    """The result of `call`, or the exception of one of `errors` it raised."""
    try:
        return call()
    except errors as exc:
        return exc


def assert_clean_reason(closed: SessionClosed) -> None:
    assert closed.reason
    # The server sends at most REASON_BYTES of it: the cut must stay valid UTF-8.
    closed.reason.encode()[:REASON_BYTES].decode("utf-8")


# -- frames ------------------------------------------------------------------------------


def is_image_signature(image: bytes) -> bool:
    """protocol.md: a frame's image is JPEG, WebP or PNG."""
    return image.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")) or (
        image[:4] == b"RIFF" and image[8:12] == b"WEBP"
    )


def expected_frame_close(data: bytes, limit: int) -> Close | None:
    """The close code protocol.md gives a binary message, or None when it is a frame."""
    if len(data) < FRAME_HEADER.size:
        return Close.PROTOCOL  # truncated header
    image = data[FRAME_HEADER.size :]
    if len(image) > limit:
        return Close.TOO_BIG
    (capture_ms,) = struct.unpack_from("<d", data, 4)
    if not math.isfinite(capture_ms) or abs(capture_ms) >= 2**63 / 1000:
        return Close.PROTOCOL
    if image and not is_image_signature(image):
        return Close.UNSUPPORTED_DATA
    return None


def check_frame(data: bytes, limit: int) -> None:
    expected = expected_frame_close(data, limit)
    frame = attempt(lambda: parse_frame(data, limit), (SessionClosed,))
    if isinstance(frame, SessionClosed):
        assert frame.code == expected, (frame.code, frame.reason)
        assert_clean_reason(frame)
        return
    assert expected is None
    assert isinstance(frame, Frame)
    seq, capture_ms = FRAME_HEADER.unpack_from(data)
    assert frame.seq == seq
    assert frame.capture_ms == capture_ms
    assert frame.data == data[FRAME_HEADER.size :]


@FUZZ
@given(data=st.binary(max_size=64), limit=st.integers(1, 64))
@example(data=b"", limit=1)
@example(data=b"\x00" * 11, limit=1)
def test_arbitrary_bytes_as_a_frame(data: bytes, limit: int) -> None:
    check_frame(data, limit)


NAN_BITS = st.integers(1, (1 << 52) - 1).map(lambda m: (0x7FF << 52) | m)
CAPTURE_MS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, math.inf, -math.inf, 1e308, -1e308, 5e-324, 2.0**53]),
    # Around the bound no real clock reaches (the end of int64 microseconds), and the
    # sizes whose microseconds overflow a float.
    st.sampled_from([2**63 / 1000, -(2**63) / 1000, math.nextafter(2**63 / 1000, 0), 1e306]),
    # NaNs with every payload and sign, as raw bits.
    st.tuples(NAN_BITS, st.booleans()).map(
        lambda t: struct.unpack("<d", struct.pack("<Q", t[0] | (t[1] << 63)))[0]
    ),
)
IMAGE_START = st.sampled_from(
    [
        b"",
        b"\xff\xd8\xff",
        b"\x89PNG\r\n\x1a\n",
        b"RIFF\x00\x00\x00\x00WEBP",
        b"GIF89a",
        b"BM",
        b"II*\x00",
        b"\xff\xd8",
        b"RIFF\x00\x00\x00\x00WEBX",
        b"\x89PNG",
    ]
)


@FUZZ
@given(
    seq=st.integers(0, 2**32 - 1),
    capture_ms=CAPTURE_MS,
    start=IMAGE_START,
    limit=st.integers(1, 4096),
    around=st.integers(-2, 2),
    filler=st.binary(min_size=1, max_size=1),
)
def test_frame_headers_and_sizes_around_the_limit(
    seq: int, capture_ms: float, start: bytes, limit: int, around: int, filler: bytes
) -> None:
    size = max(len(start), limit + around)
    image = (start + filler * size)[:size] if start or around >= 0 else b""
    check_frame(FRAME_HEADER.pack(seq, capture_ms) + image, limit)


def test_exactly_a_header_is_a_frame_without_an_image() -> None:
    frame = parse_frame(FRAME_HEADER.pack(2**32 - 1, -1.5), 1)
    assert (frame.seq, frame.capture_ms, frame.data) == (2**32 - 1, -1.5, b"")


def test_every_signature_the_protocol_names_is_accepted() -> None:
    for start in (*MAGIC, b"RIFF\x10\x00\x00\x00WEBPVP8 "):
        assert parse_frame(FRAME_HEADER.pack(1, 0.0) + start, 64).data == start


# -- hello and control messages ----------------------------------------------------------

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.sampled_from(["hello", "holistic", "pose", "HELLO", "hello ", "\u0000", "\ud7ff"]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
HELLO_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.just("hello"), JSON_VALUES),
        "version": st.one_of(st.sampled_from([1, 1.0, True, 2, 0, "1"]), JSON_VALUES),
        "track": st.one_of(st.sampled_from(["holistic", "pose", "Pose", "hands"]), JSON_VALUES),
        "fps": st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-(10**400), 10**400),
            st.sampled_from([0.5, 60, 60.0000001, 0.4999999, 15, True]),
            JSON_VALUES,
        ),
        "extra": JSON_VALUES,
    },
)


def expected_hello(message: Any) -> Hello | None:
    """docs/protocol.md's hello, read literally: None when it must close with 4001."""
    if not isinstance(message, dict) or message.get("type") != "hello":
        return None
    version = message.get("version")
    if isinstance(version, bool) or not isinstance(version, int | float) or version != 1:
        return None
    # null is a field left out (docs/protocol.md, "Hello").
    track = message.get("track")
    track = "holistic" if track is None else track
    if not isinstance(track, str) or track not in ("holistic", "pose"):
        return None
    fps = message.get("fps")
    fps = 15 if fps is None else fps
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0.5 <= fps <= 60:
        return None
    return Hello(Track(track), float(fps))


def check_hello(text: str, message: Any) -> None:
    expected = expected_hello(message)
    hello = attempt(lambda: parse_hello(first_message(text)), (SessionClosed,))
    if isinstance(hello, SessionClosed):
        assert hello.code == Close.PROTOCOL
        assert_clean_reason(hello)
        assert expected is None, (text[:200], hello.reason)
        return
    assert hello == expected


def check_control(text: str) -> None:
    with pytest.raises(SessionClosed) as raised:
        parse_control(text)
    assert raised.value.code == Close.PROTOCOL
    assert_clean_reason(raised.value)


def loads_or_invalid(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return ValueError


@FUZZ
@given(text=st.text())
@example(text="[" * 100_000)
@example(text='{"type": "hello", "version": 1, "fps": ' + "9" * 400 + "}")
@example(text='{"type": "hello", "version": 1, "fps": ' + "9" * 5000 + "}")
@example(text='{"type": "hello", "version": 1, "fps": NaN}')
def test_arbitrary_text_as_hello_and_control(text: str) -> None:
    check_hello(text, loads_or_invalid(text))
    check_control(text)


@FUZZ
@given(message=st.one_of(HELLO_LIKE, JSON_VALUES))
@example(message={"type": "hello", "version": True})
@example(message={"type": "hello", "version": 1, "fps": 10**400})
@example(message={"type": "hello", "version": 1, "track": ["pose"]})
@example(message={"type": "hello", "version": 1, "fps": None, "track": None})
@example(message={"type": "é" * 200})
@example(message={"type": "hello", "version": "é" * 200})
def test_arbitrary_json_as_hello_and_control(message: Any) -> None:
    text = json.dumps(message)
    check_hello(text, message)
    check_control(text)


def control_or_close(text: str) -> Control | SessionClosed:
    try:
        return parse_control(text)
    except SessionClosed as closed:
        return closed


NUMBERS = st.one_of(st.floats(), st.integers(-(10**400), 10**400), st.booleans())


MISSING = object()  # the key left out


@FUZZ
@given(
    head=st.one_of(
        JSON_VALUES, st.lists(NUMBERS, max_size=6), st.lists(NUMBERS, min_size=4, max_size=4)
    ),
    gaze=st.one_of(st.just(MISSING), JSON_VALUES, st.lists(NUMBERS, min_size=2, max_size=2)),
)
@example(head=[0.0, 0.0, 0.0, 1.00999], gaze=MISSING)
@example(head=[0.5, -0.5, 0.5, 0.5], gaze=[0.03, -1])
@example(head=[0.5, -0.5, 0.5, 0.5], gaze=[0.03, 10**400])
@example(head=[0.5, -0.5, 0.5, 0.5], gaze=[math.nan, 0.0])
@example(head=None, gaze=[0.0, 0.0])
@example(head=[math.nan, 0.0, 0.0, 1.0], gaze=None)
@example(head=[0.0, 0.0, 0.0, 1.01001], gaze=MISSING)
def test_arbitrary_calibrate_rests(head: Any, gaze: Any) -> None:
    """A calibrate's head is a unit quaternion (to 1%), made exactly unit, or null; its
    gaze two numbers from -1 to 1, or null or left out; anything else closes with a clean
    reason."""
    message = {"type": "calibrate", "head": head}
    if gaze is not MISSING:
        message["gaze"] = gaze
    control = control_or_close(json.dumps(message))
    if isinstance(control, SessionClosed):
        assert control.code == Close.PROTOCOL
        assert_clean_reason(control)
        return
    if head is None:
        assert control.clear
        assert gaze in (None, MISSING)
        return
    assert control.rest is not None
    assert all(math.isfinite(c) for c in control.rest.head)
    assert math.hypot(*control.rest.head) == pytest.approx(1.0, abs=1e-12)
    if gaze in (None, MISSING):
        assert control.rest.gaze is None
    else:
        assert control.rest.gaze == tuple(gaze)
        assert all(-1.0 <= v <= 1.0 for v in control.rest.gaze)


@FUZZ
@given(
    name=st.one_of(st.just(MISSING), st.sampled_from(EMOTIONS), st.none(), JSON_VALUES),
    weight=st.one_of(st.just(MISSING), NUMBERS, JSON_VALUES),
)
@example(name="happy", weight=1)
@example(name="happy", weight=None)
@example(name="sad", weight=5e-324)
@example(name="angry", weight=1.0000000000000002)
@example(name=None, weight="heavy")
@example(name="Surprised", weight=MISSING)
def test_arbitrary_emotions(name: Any, weight: Any) -> None:
    """An emotion is one of VRM's five or null, at a weight above 0 and at most 1 (left
    out or null: 1); anything else closes with a clean reason."""
    message: dict[str, Any] = {"type": "emotion"}
    for key, value in (("name", name), ("weight", weight)):
        if value is not MISSING:
            message[key] = value
    control = control_or_close(json.dumps(message))
    if isinstance(control, SessionClosed):
        assert control.code == Close.PROTOCOL
        assert_clean_reason(control)
        return
    held = control.emotion
    assert held is not None
    assert name is None or name in EMOTIONS
    assert held.name == name
    if name is not None:
        assert 0.0 < held.weight <= 1.0
        assert held.weight == (1.0 if weight is MISSING or weight is None else weight)


@pytest.mark.parametrize("depth", [10, 900, 1000, 5000, 100_000])
def test_deeply_nested_json_is_a_protocol_error(depth: int) -> None:
    for text in ("[" * depth + "]" * depth, '{"type": ' + "[" * depth + "]" * depth + "}"):
        check_hello(text, None)
        check_control(text)


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=1024),
        st.one_of(JSON_VALUES, st.fixed_dictionaries({"resume": JSON_VALUES})).map(
            lambda value: json.dumps(value).encode()
        ),
    )
)
@example(body=b"[" * 100_000)  # past any recursion limit hypothesis sets
@example(body=b'{"resume": "\\ud800"}')
def test_arbitrary_bodies_of_an_end_over_http(body: bytes) -> None:
    """POST /api/end's body: a resume string, or a 400 saying what the body should be."""
    resume = resume_or_refusal(body)
    if isinstance(resume, BadRequestError):
        assert resume.detail.startswith("the body ")
    else:
        assert resume
        assert json.loads(body)["resume"] == resume


def resume_or_refusal(body: bytes) -> str | BadRequestError:
    try:
        return resume_of(body)
    except BadRequestError as refused:
        return refused


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=256),
        st.fixed_dictionaries(
            {},
            optional={
                "name": st.sampled_from(EMOTIONS) | st.none() | JSON_VALUES,
                "weight": NUMBERS | JSON_VALUES,
            },
        ).map(lambda value: json.dumps(value).encode()),
    )
)
@example(body=b"[" * 100_000)
@example(body=b'{"name": "happy", "weight": 1e400}')
def test_arbitrary_bodies_of_an_emotion_over_http(body: bytes) -> None:
    """PUT /api/emotion's body: an emotion, or a 400 saying what is wrong with it."""
    held = attempt(lambda: emotion_of(body), (BadRequestError,))
    if isinstance(held, Exception):
        assert isinstance(held, BadRequestError)
        assert held.detail.startswith(("the body must be", "an emotion's"))
        return
    message = json.loads(body)
    assert held.name == message["name"]
    assert held.name is None or 0.0 < held.weight <= 1.0


KEYLIKE = st.text(alphabet=string.ascii_letters + string.digits + "-_é", min_size=20, max_size=66)


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=1024),
        st.fixed_dictionaries(
            {}, optional={"link_key": KEYLIKE | JSON_VALUES, "watch": KEYLIKE | JSON_VALUES}
        ).map(lambda value: json.dumps(value).encode()),
    )
)
@example(body=b'{"watch": "\\ud800' + b"x" * 30 + b'"}')
@example(body=b"[" * 100_000)
def test_arbitrary_bodies_of_a_pairing_codes_offer(body: bytes) -> None:
    """PUT /api/pair/CODE's body: exactly one of a link key and a watch token, each of a
    link key's form, or a 400 saying what the body should be."""
    handed = handed_or_refusal(body)
    if isinstance(handed, BadRequestError):
        assert handed.detail.startswith("the body must be ")
        return
    sent = json.loads(body)
    assert is_link_key(handed.secret)
    if isinstance(handed, Link):
        assert (handed.key, handed.access_key) == (sent["link_key"], "the page's access key")
        assert "watch" not in sent or sent["watch"] is None
    else:
        assert handed.token == sent["watch"]
        assert "link_key" not in sent or sent["link_key"] is None


def handed_or_refusal(body: bytes) -> Handed | BadRequestError:
    try:
        return handed_of(body, "the page's access key")
    except BadRequestError as refused:
        return refused


@given(
    text=st.one_of(st.text(max_size=24), st.text(alphabet=ALPHABET + "-  abcdxyz0", max_size=12))
)
@example(text="k7qm-2xda")
def test_arbitrary_text_typed_as_a_pairing_code(text: str) -> None:
    """Whatever is typed is a code of the alphabet or no code; a code reads as itself."""
    code = normalized(text)
    if code is not None:
        assert len(code) == LENGTH
        assert set(code) <= set(ALPHABET)
        assert normalized(code) == code
        assert code == text.upper().replace("-", "").replace(" ", "")


# -- declared upload types ---------------------------------------------------------------

ACCEPTED_TYPES = sorted(uploads.IMAGE_TYPES | NEUTRAL_TYPES)


def case_scrambled(text: str, flips: list[bool]) -> str:
    return "".join(
        c.upper() if f else c for c, f in zip(text, flips + [False] * len(text), strict=False)
    )


@FUZZ
@given(content_type=st.one_of(st.text(), st.from_regex(r"[a-z]+/[a-z0-9.+-]+(;.*)?")))
@example(content_type="image/svg+xml")
@example(content_type="multipart/form-data; boundary=x")
def test_arbitrary_declared_types(content_type: str) -> None:
    declared = content_type.split(";")[0].strip().lower()
    refused = attempt(lambda: uploads.check_declared_type(content_type), (UnsupportedTypeError,))
    if isinstance(refused, UnsupportedTypeError):
        assert refused.code == "unsupported_type"
        assert STATUS[type(refused)] == 415
        assert declared not in ACCEPTED_TYPES
        return
    assert declared in ACCEPTED_TYPES


@FUZZ
@given(
    kind=st.sampled_from(ACCEPTED_TYPES),
    flips=st.lists(st.booleans(), max_size=30),
    params=st.text(),
    space=st.sampled_from(["", " ", "\t"]),
)
def test_every_accepted_type_is_accepted_in_any_case_with_parameters(
    kind: str, flips: list[bool], params: str, space: str
) -> None:
    uploads.check_declared_type(f"{space}{case_scrambled(kind, flips)}{space};{params}")


# -- image probing and decoding ----------------------------------------------------------

PIXEL_LIMITS = st.sampled_from([1, 64 * 64, 300_000, Config().max_pixels])


def check_image(data: bytes, max_pixels: int) -> HolotrackError | tuple[int, int]:
    """Probe then decode, as /predict and the worker do; returns the error or the size."""
    info = attempt(lambda: imaging.probe(data, max_pixels), IMAGE_ERRORS)
    if isinstance(info, HolotrackError):
        assert info.code in {"empty", "not_an_image", "unsupported_type", "too_many_pixels"}
        assert info.detail
        return info
    assert isinstance(info, imaging.ImageInfo)
    assert info.format in imaging.SUPPORTED_FORMATS
    assert 1 <= info.width * info.height <= max_pixels
    # The header passed, so decoding may only find the data corrupt.
    rgb = attempt(lambda: imaging.decode(data, max_pixels), (NotAnImageError,))
    if isinstance(rgb, NotAnImageError):
        assert rgb.detail
        return rgb
    assert isinstance(rgb, np.ndarray)
    assert rgb.dtype == np.uint8
    assert rgb.ndim == 3
    assert rgb.shape[2] == 3
    assert rgb.flags["C_CONTIGUOUS"]
    height, width = rgb.shape[:2]
    # EXIF may turn it on its side; it never changes the pixel count.
    assert {width, height} == {info.width, info.height}, (info, rgb.shape)
    return width, height


@FUZZ
@given(data=st.binary(max_size=2048), max_pixels=PIXEL_LIMITS)
def test_arbitrary_bytes_as_an_image(data: bytes, max_pixels: int) -> None:
    check_image(data, max_pixels)


MUTATIONS = st.lists(
    st.builds(
        Mutation,
        kind=st.sampled_from(MUTATION_KINDS),
        at=st.one_of(st.integers(0, HEADER_BYTES - 1), st.integers(0, 1 << 20)),
        value=st.integers(0, 255),
        payload=st.binary(min_size=1, max_size=16),
    ),
    min_size=1,
    max_size=4,
)


@HEAVY
@given(seed=st.sampled_from(sorted(dict(seeds()))), mutations=MUTATIONS, max_pixels=PIXEL_LIMITS)
# A TIFF strip-offset tag turned into a rational: Pillow raised TypeError from load().
@example(seed="tiff", mutations=[Mutation("flip", 72, 115)], max_pixels=25_000_000)
def test_mutated_real_images(seed: str, mutations: list[Mutation], max_pixels: int) -> None:
    check_image(mutate(dict(seeds())[seed], mutations), max_pixels)


def test_seeded_mutations_of_real_images() -> None:
    """More mutations than hypothesis runs, cheaply: this sweep found the TIFF TypeError."""
    rng = random.Random(1)
    for _ in range(SWEEP):
        _, data = rng.choice(seeds())
        mutated = mutate(data, random_mutations(rng, rng.randrange(1, 4)))
        check_image(mutated, rng.choice([64 * 64, 300_000, Config().max_pixels]))


def test_every_seed_decodes_whole() -> None:
    for name, data in seeds():
        assert isinstance(check_image(data, Config().max_pixels), tuple), name


# -- end to end, through one real app ----------------------------------------------------

PREDICT_ERRORS = {
    400: {"empty", "not_an_image"},
    413: {"too_many_pixels", "too_large"},
    415: {"unsupported_type"},
}
NEUTRAL = "application/octet-stream"
HOSTILE_TYPES = [
    "text/html",
    "image/svg+xml",
    "application/json; charset=utf-8",
    "image/x-icon",
    'IMAGE/PNG; q="x"',
    "image/jpeg;;;;",
    "bogus",
    "image/",
]


def expected_upload(data: bytes, content_type: str, max_pixels: int) -> tuple[int, str | None]:
    """The status and code POST /predict must answer, worked out by the same parsers here."""
    try:
        uploads.check_declared_type(content_type)
        if not data:
            raise EmptyInputError("empty")
        imaging.decode(data, max_pixels)
    except HolotrackError as exc:
        return STATUS[type(exc)], exc.code
    return 200, None


def hostile_uploads(rng: random.Random, count: int) -> list[tuple[bytes, str, bool]]:
    """(body, declared type, multipart?) triples: mutated real images with odd types."""
    bodies = [data for _, data in seeds()]
    out = []
    for _ in range(count):
        base = rng.choice(bodies)
        data = mutate(base, random_mutations(rng, rng.randrange(1, 4)))
        if rng.random() < 0.1:
            data = rng.choice([b"", png_declaring(20000, 20000), rng.randbytes(300)])
        content_type = rng.choice(
            [NEUTRAL, "image/jpeg", "image/png", "", *rng.sample(HOSTILE_TYPES, 1)]
        )
        out.append((data, content_type, rng.random() < 0.5))
    return out


async def post(client: Client, data: bytes, content_type: str, multipart: bool) -> Any:
    if multipart:
        form = aiohttp.FormData()
        form.add_field("file", io.BytesIO(data), filename="x", content_type=content_type or NEUTRAL)
        response = await client.post("/predict", data=form)
    else:
        headers = {"Content-Type": content_type} if content_type else {}
        response = await client.post("/predict", data=data, headers=headers)
    return response.status, await response.json()


def check_answer(status: int, body: dict[str, Any], expected: tuple[int, str | None]) -> None:
    assert (status, body.get("error")) == expected, body
    if status == 200:
        assert set(body["landmarks"]) == {"pose", "face", "left_hand", "right_hand"}
    else:
        assert body["error"] in PREDICT_ERRORS[status]
        assert body["detail"]


HOSTILE_CONFIG = Config(workers=1, no_cache=True, max_frame_bytes=64 * 1024, max_pixels=4_000_000)
SESSION_DEADLINE = 30.0
HELLOS = [
    {"type": "hello", "version": 1, "track": "pose", "fps": 10},
    {"type": "hello", "version": 1, "track": "holistic", "fps": 60},
    {"type": "hello", "version": 1},
    {"type": "hello", "version": 1, "track": "pose", "fps": 1e400},
    {"type": "hello", "version": 1, "track": "pose", "fps": 10**400},
    {"type": "hello", "version": True, "track": "pose"},
    {"type": "hello", "version": 1, "track": "pose", "fps": 0.49},
    {"type": "hello", "version": 1, "track": ["pose"]},
    {"type": "hullo", "version": 1},
    ["hello"],
]
TERMINAL_TEXTS = [
    '{"type": "pause"}',
    "[" * 50_000,
    "not json",
    '{"type": "' + "é" * 300 + '"}',
    json.dumps(HELLOS[0]),
]


def hostile_session(rng: random.Random, max_frame_bytes: int) -> list[str | bytes]:
    """A hello (perhaps a bad one), frames (perhaps mutated), perhaps a closing blunder."""
    messages: list[str | bytes] = []
    if rng.random() < 0.1:
        messages.append(frame_message(0, 0.0, seeds()[0][1]))  # a frame before hello
        return messages
    hello = rng.choice(HELLOS)
    messages.append(json.dumps(hello) if rng.random() < 0.95 else "{" + json.dumps(hello))
    for seq in range(rng.randrange(0, 4)):
        base = rng.choice(
            [data for name, data in seeds() if name.startswith(("jpeg", "png", "webp"))]
        )
        edits = random_mutations(rng, rng.randrange(1, 3)) if rng.random() < 0.7 else []
        # Clocks that jump back, far ahead, or toward the end of MediaPipe's int64 clock.
        capture_ms = rng.choice([seq * 66.7, 0.0, -1e6, 1e9, NEAR_THE_END_MS])
        messages.append(frame_message(seq, capture_ms, mutate(base, edits)))
    ending = rng.randrange(7)
    if ending == 0:
        messages.append(rng.choice(TERMINAL_TEXTS))
    elif ending == 1:
        messages.append(rng.randbytes(rng.randrange(12)))  # truncated header
    elif ending == 2:
        messages.append(FRAME_HEADER.pack(9, rng.choice([math.nan, math.inf])) + b"\xff\xd8\xff")
    elif ending == 3:
        messages.append(frame_message(9, 0.0, b"GIF89a" + rng.randbytes(64)))
    elif ending == 4:
        messages.append(frame_message(9, 0.0, b"\xff\xd8\xff" + bytes(max_frame_bytes)))
    return messages


def expected_reply(image: bytes, max_pixels: int) -> str:
    """`result`, or the code of the error message a decoded frame must get."""
    if not image:
        return "bad_frame"
    try:
        imaging.decode(image, max_pixels)
    except TooManyPixelsError:
        return "too_many_pixels"
    except HolotrackError:
        return "bad_frame"
    return "result"


async def play(client: Client, messages: list[str | bytes], config: Config) -> None:
    """Sends the messages in lockstep and checks every reply and the close code exactly."""
    live = await LiveClient.connect(client)
    closing: int | None = None
    first = messages[0]
    if isinstance(first, bytes):
        closing = Close.POLICY
    else:
        try:
            parse_hello(first_message(first))
        except SessionClosed as closed:
            closing = closed.code
    await (live.ws.send_bytes(first) if isinstance(first, bytes) else live.ws.send_str(first))
    if closing is None:
        await live.next_of("ready")
        for message in messages[1:]:
            if isinstance(message, str):
                await live.ws.send_str(message)
                closing = Close.PROTOCOL
                break
            try:
                frame = parse_frame(message, config.max_frame_bytes)
            except SessionClosed as closed:
                await live.ws.send_bytes(message)
                closing = closed.code
                break
            await live.ws.send_bytes(message)
            reply = await live.next_of("result", "error")
            assert reply["seq"] == frame.seq
            got = "result" if reply["type"] == "result" else reply["code"]
            assert got == expected_reply(frame.data, config.max_pixels), (reply, frame.seq)
    if closing is None:
        await live.ws.close()
        return
    code, reason = await live.closed()
    assert code == closing, (reason, messages[-1][:100])
    assert reason


async def read_close(reader: asyncio.StreamReader) -> int:
    """Reads server frames from a raw socket until the close frame; returns its code."""
    while True:
        head = await reader.readexactly(2)
        size = head[1] & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await reader.readexactly(8))
        payload = await reader.readexactly(size)
        if head[0] & 0x0F == 0x8:
            code: int = struct.unpack("!H", payload[:2])[0]
            return code


# Framing errors aiohttp's reader answers itself, with the RFC 6455 code, before the
# session sees a message.
RAW_FRAMES = [
    ("invalid-utf8-text", ws_frame(0x1, b"\xff\xfe hello"), 1007),
    ("reserved-opcode", ws_frame(0x3, b"x"), 1002),
    ("continuation-first", ws_frame(0x0, b"x"), 1002),
    ("oversized-ping", ws_frame(0x9, b"p" * 126), 1002),
]


async def server_still_answers(client: Client) -> None:
    await client.app[SESSIONS].wait_empty()
    assert client.app[SCHEDULER].slots == {}
    status, body = await post(client, PERSON_JPEG.read_bytes(), "image/jpeg", True)
    assert status == 200
    assert body["landmarks"]["pose"] is not None
    live = await LiveClient.connect(client)
    await live.hello("holistic")
    results = await live.lockstep(video_frames(ASL_VIDEO)[:3])
    assert all(r["landmarks"]["pose"] is not None for r in results)


async def test_hostile_uploads(make_client: MakeClient) -> None:
    client = await make_client(HOSTILE_CONFIG)
    rng = random.Random(20261125)
    for data, content_type, multipart in hostile_uploads(rng, 60):
        # The server reads a multipart part's header as sent, a body's through aiohttp's
        # parser (which takes an unparsable type for application/octet-stream).
        declared = (content_type or NEUTRAL) if multipart else parse_content_type(content_type)[0]
        expected = expected_upload(data, declared, HOSTILE_CONFIG.max_pixels)
        status, body = await post(client, data, content_type, multipart)
        check_answer(status, body, expected)
    await server_still_answers(client)


async def test_malformed_websocket_framing(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(HOSTILE_CONFIG)
    assert client.port is not None
    too_big = ("too-big", ws_frame(0x2, bytes(HOSTILE_CONFIG.max_frame_bytes + 2048)), 1009)
    for name, frame, code in [*RAW_FRAMES, too_big]:
        caplog.clear()
        reader, writer = await raw_ws_connect(client.host, client.port)
        with caplog.at_level(logging.INFO, logger="webapp.live.session"):
            writer.write(ws_frame(0x1, json.dumps(HELLOS[0]).encode()) + frame)
            await writer.drain()
            assert await read_close(reader) == code, name
            writer.close()
            await client.app[SESSIONS].wait_empty()
        # The log and the metrics say the code the client got, not one never sent.
        (ended,) = [r.getMessage() for r in caplog.records if " end code=" in r.getMessage()]
        assert f" end code={code} " in ended, name
    closed = client.app[METRICS].sessions_closed
    assert closed.labels("1002")._value.get() == 3
    assert closed.labels("1007")._value.get() == 1
    assert closed.labels("1009")._value.get() == 1
    assert closed.labels("4001")._value.get() == 0
    await server_still_answers(client)


def test_what_aiohttps_reader_gave_up_on_keeps_the_code_it_sent() -> None:
    # The heartbeat's timeout drops the connection without a close frame: 1006.
    heartbeat = read_error(TimeoutError("No PONG received after 0.2 seconds"))
    assert (heartbeat.code, heartbeat.reason) == (
        1006,
        "heartbeat: No PONG received after 0.2 seconds",
    )
    for code in (1002, 1007, 1009):
        assert read_error(WebSocketError(code, "bad")).code == code
    assert read_error(ConnectionResetError("gone")).code == 1006


async def test_a_client_that_closes_before_its_hello_is_no_protocol_error(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp answers a client's close with 1000 itself; a page reloaded while its socket
    opened was logged and counted as 4001, a code it never got, among the real ones."""
    caplog.set_level(logging.INFO)
    client = await make_client(Config(workers=1))
    ws = await client.ws_connect("/ws")
    await ws.close()
    assert ws.close_code == Close.NORMAL
    await client.app[SESSIONS].wait_empty()
    (ended,) = [r.getMessage() for r in caplog.records if " end code=" in r.getMessage()]
    assert " end code=1000 reason='the client closed before its hello'" in ended
    closed = client.app[METRICS].sessions_closed
    assert closed.labels("4001")._value.get() == 0
    assert closed.labels("1000")._value.get() == 1


async def test_a_connection_dropped_before_its_hello_is_no_protocol_error(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A socket gone without a close frame (a phone leaving the Wi-Fi as it connects) got no
    code at all, and was logged and counted as a 4001 among the real ones."""
    caplog.set_level(logging.INFO)
    client = await make_client(Config(workers=1))
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        f"GET /ws HTTP/1.1\r\nHost: {client.host}:{client.port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    writer.transport.abort()
    await client.app[SESSIONS].wait_empty()
    (ended,) = [r.getMessage() for r in caplog.records if " end code=" in r.getMessage()]
    assert " end code=1006 " in ended, ended
    closed = client.app[METRICS].sessions_closed
    assert closed.labels("4001")._value.get() == 0
    assert closed.labels("1006")._value.get() == 1


class StuckSession(Exception):
    """A hostile session got neither its reply nor its close within SESSION_DEADLINE."""


async def test_hostile_sessions(make_client: MakeClient) -> None:
    client = await make_client(HOSTILE_CONFIG)
    rng = random.Random(20261126)
    for n in range(40):
        messages = hostile_session(rng, HOSTILE_CONFIG.max_frame_bytes)
        try:
            async with asyncio.timeout(SESSION_DEADLINE):
                await play(client, messages, HOSTILE_CONFIG)
        except TimeoutError:
            raise StuckSession(f"session {n}: {[m[:40] for m in messages]}") from None
    await server_still_answers(client)


# A capture clock near the end of MediaPipe's int64 microseconds: still a finite number.
NEAR_THE_END_MS = (2**63 - 10**7) / 1000.0


async def test_a_clients_clock_cannot_spoil_the_graph_the_next_session_gets(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1))
    frames = video_frames(ASL_VIDEO)
    hostile = await LiveClient.connect(client)
    await hostile.hello("holistic")
    for seq, capture_ms in enumerate((0.0, NEAR_THE_END_MS)):
        await hostile.send(seq, capture_ms, frames[seq])
        await hostile.next_of("result", "error")
    await hostile.ws.close()
    await client.app[SESSIONS].wait_empty()
    # The next session gets that graph as a spare. Its camera pauses for 30 s (a hidden
    # tab): a longer gap between two frames, nothing more.
    benign = await LiveClient.connect(client)
    await benign.hello("holistic")
    for seq, capture_ms in enumerate((0.0, 66.7, 30_000.0)):
        await benign.send(seq, capture_ms, frames[seq])
        reply = await benign.next_of("result", "error")
        assert reply["type"] == "result", reply


async def test_a_refusal_quoting_the_origin_stays_valid_utf8(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))
    origin = "https://a" + "\u00e9" * 80 + ".example"  # an odd count of ASCII bytes first
    live = LiveClient(await client.ws_connect("/ws", origin=origin))
    code, reason = await live.closed()
    assert code == Close.POLICY
    assert "origin" in reason


async def test_a_refusal_quoting_a_host_that_is_not_utf8_is_still_a_close(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp reads header bytes that are not UTF-8 as lone surrogates, and the cross-site
    refusal quotes the Host: encoding that reason raised, so the client got no close frame
    and anyone could fill the log with tracebacks, one a request."""
    client = await make_client(Config(workers=1))
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: \xff\xfe\r\nOrigin: https://evil.example\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        opcode, length = await reader.readexactly(2)
        assert opcode == 0x88  # a close frame, final
        payload = await reader.readexactly(length)
    finally:
        writer.close()
    assert int.from_bytes(payload[:2], "big") == Close.POLICY
    reason = payload[2:].decode()
    assert reason.startswith("origin 'https://evil.example' is not this server")
    assert "\\udcff\\udcfe" in reason
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
