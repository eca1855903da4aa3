"""GET /avatar in a real headless Chromium (WebGL through SwiftShader): three.js and
three-vrm from node_modules, the shipped VRM, your own .vrm, and the OBS watch view.

The tests under "Needs the server's rig and watchers" drive the whole path (protocol issue
12: hello "rig": true, ready's "watch", results' "rig", watcher connections). They fail, on
purpose, against a server that does not provide those yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import math
import shlex
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
import pytest
from aiohttp import web
from PIL import Image
from playwright.async_api import FilePayload, Page, WebSocket

from tests.browser import (
    BrowserPage,
    NetworkDown,
    Reported,
    cut_camera_session,
    drop_link,
    fake_camera_args,
    open_page,
    record_socket_urls,
    record_text,
    write_y4m,
)
from tests.conftest import Client, MakeClient
from tests.media import ASL_VIDEO, PERSON_JPEG
from tests.vmc_receiver import Received, vmc_receiver
from tests.vrm_files import (
    PERFECT_SYNC,
    _edited,
    eye_bones_vrm,
    perfect_sync_vrm,
    plain_glb,
    surprised_vrm,
)
from webapp.analysis.rig import quat
from webapp.analysis.rig.idle import IDLE_BONES
from webapp.analysis.rig.quat import Quat
from webapp.analysis.rig.straight_ahead import head_in_chest
from webapp.app import TEMPLATES_DIR, create_app
from webapp.avatar_page import (
    DEFAULT_AVATAR_URL,
    VENDOR_FILES,
    AvatarPaths,
    missing_files,
    setup_avatar_routes,
)
from webapp.config import Config, load_config
from webapp.keys import CONFIG, LIVE, SESSIONS

ROOT = Path(__file__).resolve().parents[1]
AVATAR = AvatarPaths().default_avatar
# Pixels read back from the avatar canvas, scaled to SIZE x SIZE.
SIZE = 64
# A pixel counts as changed when one channel moved by more than this (of 255).
CHANNEL_STEP = 24

MakeAvatarClient = Callable[..., Awaitable[Client]]


def about_z(degrees: float) -> list[float]:
    """A quaternion [x, y, z, w] turning `degrees` about +Z (VRM 1.0 axes: the avatar's
    left arm points along +X, so a negative angle lowers it)."""
    half = math.radians(degrees) / 2
    return [0.0, 0.0, math.sin(half), math.cos(half)]


# Hand-written rigs for rendering checks only: arms lowered, then the left elbow bent 90 degrees.
ARMS_DOWN: dict[str, Any] = {
    "bones": {"leftUpperArm": about_z(-75), "rightUpperArm": about_z(75)},
    "expressions": {},
}
ELBOW_BENT: dict[str, Any] = {
    "bones": {**ARMS_DOWN["bones"], "leftLowerArm": about_z(90)},
    # Metres from the image's centre: the avatar steps aside, and stays in view.
    "hips_position": [0.1, -0.5, 0.0],
    "expressions": {"aa": 1.0},
}

# How far her left hand hangs below her left shoulder, in metres: about 0.3 with her arms
# by her sides, 0 in VRM's T-pose.
HAND_DROP_JS = """() => {
  const avatar = window.holotrackAvatar;
  return avatar.position("leftUpperArm")[1] - avatar.position("leftHand")[1];
}"""
ARMS_HANG = 0.2

# How many of the SIZE x SIZE pixels differ from the snapshot taken by snapshot().
CHANGED_JS = f"""
() => {{
  const now = window.holotrackAvatar.pixels({SIZE});
  const before = window.__avatarBefore;
  let changed = 0;
  for (let i = 0; i < now.length; i += 4) {{
    const moved = [0, 1, 2, 3].some((c) => Math.abs(now[i + c] - before[i + c]) > {CHANNEL_STEP});
    if (moved) changed += 1;
  }}
  return changed;
}}
"""


@pytest.fixture
def make_avatar_client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> MakeAvatarClient:
    """The real app, avatar routes included."""

    async def build(config: Config | None = None) -> Client:
        return await aiohttp_client(create_app(config or Config(workers=1, no_cache=True)))

    return build


def needs_node_modules() -> None:
    missing = missing_files(AvatarPaths())
    if missing:
        pytest.fail(f"run `make test` (npm ci) first; missing: {', '.join(missing)}")


async def open_avatar(browser: BrowserPage, client: Client, path: str = "/avatar") -> None:
    await browser.page.goto(str(client.make_url(path)))
    await browser.page.wait_for_selector("body[data-avatar-ready]", state="attached")
    ready = await browser.page.get_attribute("body", "data-avatar-ready")
    assert ready == "true", await browser.page.inner_text("body")


@contextlib.asynccontextmanager
async def avatar_page(
    make_avatar_client: MakeAvatarClient,
    path: str = "/avatar",
    args: Sequence[str] = (),
    config: Config | None = None,
) -> AsyncIterator[BrowserPage]:
    """`path` of a new server's avatar page, open in a browser started with `args`."""
    needs_node_modules()
    client = await make_avatar_client(config)
    async with open_page(args) as browser:
        await open_avatar(browser, client, path)
        yield browser


async def load_model(page: Page, name: str, data: bytes) -> None:
    """Chooses a .vrm made of `data` with the page's file picker, until it is on show."""
    shown = await page.evaluate("window.holotrackAvatar.generation()")
    model: FilePayload = {"name": name, "mimeType": "application/octet-stream", "buffer": data}
    await page.set_input_files("#avatar-file", model)
    await page.wait_for_function(
        "(shown) => window.holotrackAvatar.generation() > shown", arg=shown
    )


async def pixels(page: Page) -> list[int]:
    data: list[int] = await page.evaluate("(size) => window.holotrackAvatar.pixels(size)", SIZE)
    return data


def opaque(rgba: list[int]) -> int:
    return sum(1 for alpha in rgba[3::4] if alpha > 0)


async def snapshot(page: Page) -> None:
    await page.evaluate(
        f"() => {{ window.__avatarBefore = window.holotrackAvatar.pixels({SIZE}); }}"
    )


async def wait_for_change(page: Page, least: int = 20) -> None:
    """Waits until at least `least` pixels differ from the last snapshot()."""
    await page.wait_for_function(f"() => ({CHANGED_JS})() >= {least}")


def alpha_at(png: bytes, x: float, y: float) -> int:
    """The alpha of a screenshot's pixel at normalized (x, y)."""
    with Image.open(io.BytesIO(png)) as image:
        rgba = image.convert("RGBA")
    alpha = rgba.getchannel("A")
    value = alpha.getpixel((int(x * (rgba.width - 1)), int(y * (rgba.height - 1))))
    assert isinstance(value, int)
    return value


# --- What works without the server's rig ---------------------------------------------------


async def test_vendored_files_and_the_default_avatar_are_served(
    make_avatar_client: MakeAvatarClient,
) -> None:
    needs_node_modules()
    client = await make_avatar_client()
    for name in VENDOR_FILES:
        response = await client.get(f"/vendor/{name}")
        assert response.status == 200, name
        assert response.content_type == "text/javascript", name
    # Nothing else in node_modules is reachable.
    for name in ("three/package.json", "three/build/three.cjs", "../package-lock.json"):
        assert (await client.get(f"/vendor/{name}")).status == 404, name
    response = await client.get(DEFAULT_AVATAR_URL)
    assert response.status == 200
    assert await response.read() == AVATAR.read_bytes()
    index = await client.get("/")
    assert '<a href="/avatar">' in await index.text()
    page = await client.get("/avatar")
    assert page.status == 200
    text = await page.text()
    assert '<script type="importmap">' in text
    assert "/vendor/three/build/three.module.js" in text
    assert '<button type="button" id="avatar-start" class="primary">Start</button>' in text
    assert '<button type="button" id="avatar-stop" disabled>Stop</button>' in text
    assert 'id="avatar-vmc"' not in text  # the server allows no VMC receiver
    # An own .vrm reaches the OBS view only if the user ticks the box: the page says so.
    assert "or your own .vrm once you load it here and tick “Show it in OBS too”" in text


async def test_the_operators_avatar_is_the_default_the_obs_view_shows(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    """--avatar: the one way a VTuber's own avatar reaches the OBS view, whose browser can
    never have the file they loaded on the page."""
    own = tmp_path / "mine.vrm"
    own.write_bytes(perfect_sync_vrm())
    client = await make_avatar_client(Config(workers=1, no_cache=True, avatar=str(own)))
    response = await client.get(DEFAULT_AVATAR_URL)
    assert response.status == 200
    assert await response.read() == own.read_bytes() != AVATAR.read_bytes()
    assert "<code>--avatar your.vrm</code>" in await (await client.get("/avatar")).text()


@pytest.mark.parametrize(
    ("write", "said"),
    [
        (lambda path: None, "cannot read"),
        (lambda path: path.write_bytes(b"PK\x03\x04 a zip"), "is not a .vrm (a binary glTF file)"),
        # The page loads it by its URL: every visitor read three.js's "No DRACOLoader".
        (
            lambda path: path.write_bytes(compressed_vrm("KHR_draco_mesh_compression", False)),
            "uses Draco mesh compression (KHR_draco_mesh_compression), which the avatar page "
            "cannot unpack",
        ),
        (
            lambda path: path.write_bytes(compressed_vrm("KHR_texture_basisu")),
            "uses KTX2 (Basis Universal) textures (KHR_texture_basisu)",
        ),
    ],
    ids=["missing", "not-glb", "draco", "ktx2"],
)
def test_an_avatar_that_is_no_vrm_is_refused_at_start(
    write: Callable[[Path], object], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "avatar.vrm"
    write(path)
    with pytest.raises(SystemExit) as exited:
        load_config(["--avatar", str(path)], environ={})
    assert exited.value.code == 2
    assert said in capsys.readouterr().err


async def test_without_node_modules_the_page_says_what_is_missing(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]], tmp_path: Path
) -> None:
    # The avatar routes alone: nothing else the server does depends on node_modules.
    app = web.Application()
    app[CONFIG] = Config()
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
    setup_avatar_routes(app, AvatarPaths(node_modules=tmp_path / "node_modules"))
    client = await aiohttp_client(app)
    response = await client.get("/avatar")
    assert response.status == 503
    text = await response.text()
    assert "three.js, three-vrm and qrcode-generator" in text
    assert "node_modules/three/build/three.module.js" in text
    assert "node_modules/@pixiv/three-vrm/lib/three-vrm.module.js" in text
    assert "node_modules/qrcode-generator/dist/qrcode.mjs" in text
    assert "make run" in text
    assert "importmap" not in text  # no script that would fail to load
    vendor = await client.get("/vendor/three/build/three.module.js")
    assert vendor.status == 404
    assert "npm ci" in await vendor.text()


async def test_the_default_avatar_renders_and_a_rig_poses_it(
    make_avatar_client: MakeAvatarClient,
) -> None:
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        assert await page.evaluate("window.holotrackAvatar.metaVersion()") == "0"
        rest = await pixels(page)
        # Not blank, and the background around the avatar is transparent.
        assert opaque(rest) > SIZE * SIZE // 20, opaque(rest)
        assert rest[3] == 0
        assert rest[-1] == 0
        # At rest her arms hang by her sides: VRM's own rest, the T-pose, holds them out,
        # which on a stream looks like the tracking broke.
        assert await page.evaluate(HAND_DROP_JS) > ARMS_HANG
        # The same rest as VMC receivers are sent (webapp/analysis/rig/idle.py).
        page_idle = await page.evaluate(
            "async () => (await import('/static/avatar/avatar.js')).IDLE_RIG.bones"
        )
        assert page_idle.keys() == IDLE_BONES.keys()
        for name, rotation in IDLE_BONES.items():
            assert page_idle[name] == pytest.approx(rotation, abs=1e-6)
        await snapshot(page)
        await page.evaluate("(rig) => window.holotrackAvatar.apply(rig)", {"bones": {}})
        await page.wait_for_function(f"() => ({HAND_DROP_JS})() < 0.05")
        await wait_for_change(page)
        await snapshot(page)
        await page.evaluate("(rig) => window.holotrackAvatar.apply(rig)", ARMS_DOWN)
        await wait_for_change(page)
        await snapshot(page)
        await page.evaluate("(rig) => window.holotrackAvatar.apply(rig)", ELBOW_BENT)
        await wait_for_change(page)
        # Bones the rig stops sending ease back to VRM's rest.
        await snapshot(page)
        await page.evaluate("(rig) => window.holotrackAvatar.apply(rig)", {"bones": {}})
        await wait_for_change(page)
        # She has VRM presets and no ARKit expressions: blendshapes leave her presets be.
        faces = {"expressions": {"blinkLeft": 0.5, "aa": 2}, "blendshapes": {"eyeBlinkLeft": 0.9}}
        wanted = await page.evaluate("(rig) => window.holotrackAvatar.expressionsFrom(rig)", faces)
        assert wanted == {"blinkLeft": 0.5, "aa": 1}
        # Full body framing shows more of her, so she is drawn smaller: fewer pixels.
        upper = opaque(await pixels(page))
        await page.check("input[name=avatar-framing][value=full]")
        await page.wait_for_function(
            f"(upper) => window.holotrackAvatar.pixels({SIZE}).filter((v, i) => i % 4 === 3"
            " && v > 0).length < upper * 0.8",
            arg=upper,
        )
        assert browser.errors == []


# The default avatar loaded on its own: where each hips_position in turn puts her hips,
# from their rest (the avatar's own units), after rest() when `rests` says so.
HIPS_SHIFTS_JS = """async (steps) => {
  const { loadVrm } = await import("/static/avatar/avatar.js");
  const avatar = await loadVrm(document.body.dataset.defaultAvatar);
  try {
    return {
      height: avatar.hipsRest.y,
      shifts: steps.map(([rests, hips]) => {
        if (rests) avatar.rest();
        return avatar.hipsFrom(hips).sub(avatar.hipsRest).toArray();
      }),
    };
  } finally {
    avatar.dispose();
  }
}"""


async def test_the_avatar_steps_aside_no_further_than_half_her_hips_height(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """docs: both parts of hips_position stay within half the hips' height, so the avatar
    never leaves the view, however far the person steps aside or crouches."""
    async with avatar_page(make_avatar_client) as browser:
        said = await browser.page.evaluate(
            HIPS_SHIFTS_JS,
            [
                [False, [0, 0.3, 0]],
                [False, [0.2, 0.3, 0]],
                [False, [3, 0.3, 0]],
                [False, [0, -3, 0]],
            ],
        )
    height = said["height"]
    first, small, far_aside, far_down = ([abs(v) for v in shift] for shift in said["shifts"])
    assert height > 0
    assert first == pytest.approx([0, 0, 0], abs=1e-9)
    # 0.2 m scaled to the avatar (her hips height over the rig's 0.95 m); 3 m stops at half.
    assert small == pytest.approx([0.2 * height / 0.95, 0, 0], abs=1e-6)
    assert far_aside == pytest.approx([height / 2, 0, 0], abs=1e-6)
    assert far_down == pytest.approx([0, height / 2, 0], abs=1e-6)


async def test_a_new_sessions_hips_count_from_its_own_first_height(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """The height counts from a session's first value, so a camera on a high shelf does
    not show: after rest, the next session's first value is the standing height again,
    not a crouch measured from the last session's camera."""
    async with avatar_page(make_avatar_client) as browser:
        said = await browser.page.evaluate(
            HIPS_SHIFTS_JS, [[False, [0, 0.3, 0]], [True, [0, 0, 0]], [False, [0, 0.1, 0]]]
        )
    height = said["height"]
    first, next_first, lower = said["shifts"]
    assert first == pytest.approx([0, 0, 0], abs=1e-9)
    assert next_first == pytest.approx([0, 0, 0], abs=1e-9)
    assert lower == pytest.approx([0, 0.1 * height / 0.95, 0], abs=1e-6)


async def test_your_own_vrm_replaces_the_avatar_and_a_non_vrm_is_refused_in_words(
    make_avatar_client: MakeAvatarClient,
) -> None:
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        assert await page.evaluate("window.holotrackAvatar.generation()") == 1
        status = "#avatar-file-status"

        await page.set_input_files("#avatar-file", AVATAR)
        await page.wait_for_function("() => window.holotrackAvatar.generation() === 2")
        assert await page.get_attribute(status, "data-kind") == "ok"
        assert "godette_avatar.vrm" in await page.inner_text(status)
        assert "no ARKit blendshapes" in await page.inner_text(status)
        assert opaque(await pixels(page)) > SIZE * SIZE // 20

        refusals: list[tuple[FilePayload, str]] = [
            (
                {"name": "notes.vrm", "mimeType": "application/octet-stream", "buffer": b"no\n"},
                "not a glTF/VRM model",
            ),
            (
                {"name": "empty.glb", "mimeType": "model/gltf-binary", "buffer": plain_glb()},
                "without VRM humanoid",
            ),
            # A VRM whose humanoid lacks a bone VRM requires: its bones named, not
            # "not a glTF/VRM model" in three-vrm's words.
            (
                {"name": "handless.vrm", "mimeType": "", "buffer": without_bones("leftHand")},
                "its humanoid does not map bones every VRM avatar must have (leftHand)",
            ),
            # A photo picked by mistake: named, not quoted back as a JSON parser's garbage.
            (
                {"name": "me.vrm", "mimeType": "image/jpeg", "buffer": PERSON_JPEG.read_bytes()},
                'it is a JPEG picture: a .vrm file is binary glTF, and begins with "glTF"',
            ),
            # An empty file (a download that never began): said so, not "not a glTF/VRM model".
            (
                {"name": "empty.vrm", "mimeType": "application/octet-stream", "buffer": b""},
                "it is empty (0 bytes)",
            ),
            # A download that did not finish: said so, not as a typed array's length.
            (
                {
                    "name": "half.vrm",
                    "mimeType": "application/octet-stream",
                    "buffer": AVATAR.read_bytes()[:100_000],
                },
                "it is cut short: 100,000 of the 591,288 bytes its header gives",
            ),
        ]
        for refused, why in refusals:
            await page.set_input_files("#avatar-file", refused)
            await page.wait_for_function(
                "(name) => document.getElementById('avatar-file-status').textContent"
                ".startsWith(name + ' is not a VRM')",
                arg=refused["name"],
            )
            text = await page.inner_text(status)
            assert await page.get_attribute(status, "data-kind") == "error"
            assert why in text, text
            assert "The previous avatar stays" in text
            assert await page.evaluate("window.holotrackAvatar.generation()") == 2
            assert opaque(await pixels(page)) > SIZE * SIZE // 20
        assert browser.errors == []


async def test_a_link_dropped_on_the_avatar_is_said_to_be_no_file(
    make_avatar_client: MakeAvatarClient,
) -> None:
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        # A .vrm's link dragged from a download site.
        await drop_link(page, "avatar-view", "https://example.com/mine.vrm")
        await page.wait_for_selector("#avatar-file-status[data-kind=error]")
        text = await page.inner_text("#avatar-file-status")
        assert "not a file" in text, text
        assert "The avatar on show stays" in text, text
        assert await page.evaluate("window.holotrackAvatar.generation()") == 1
        assert browser.errors == []


async def test_a_file_just_over_the_pages_limit_says_by_how_much(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    # 200 KB over 100 MB: rounded to whole MB, it read "it is 100 MB, over the 100 MB".
    big = tmp_path / "big.vrm"
    with big.open("wb") as out:
        out.write(b"glTF")
        out.truncate(100 * 1024 * 1024 + 200 * 1024)
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        await page.set_input_files("#avatar-file", big)
        await page.wait_for_selector("#avatar-file-status[data-kind=error]")
        text = await page.inner_text("#avatar-file-status")
        assert "it is 100.2 MB, over the 100 MB this page accepts" in text, text
        assert await page.evaluate("window.holotrackAvatar.generation()") == 1
        assert browser.errors == []


def compressed_vrm(extension: str, required: bool = True) -> bytes:
    """The shipped avatar declaring `extension` where a compressing tool writes it (the
    bytes stay uncompressed: three.js stops at the missing decoder before reading them)."""

    def edit(doc: dict[str, Any]) -> None:
        doc["extensionsUsed"].append(extension)
        if required:
            doc["extensionsRequired"] = [extension]
        if extension == "KHR_draco_mesh_compression":
            primitive = doc["meshes"][0]["primitives"][0]
            primitive["extensions"] = {extension: {"bufferView": 0, "attributes": {"POSITION": 0}}}
        elif extension == "EXT_meshopt_compression":
            doc["bufferViews"][0]["extensions"] = {
                extension: {
                    "buffer": 0,
                    "byteLength": 16,
                    "byteStride": 4,
                    "mode": "ATTRIBUTES",
                    "count": 4,
                }
            }
        else:
            for texture in doc["textures"]:
                texture["extensions"] = {extension: {"source": texture.pop("source")}}

    return _edited(edit)


@pytest.mark.parametrize(
    ("extension", "required", "words"),
    [
        ("KHR_draco_mesh_compression", False, "Draco mesh compression"),
        ("EXT_meshopt_compression", True, "meshopt compression"),
        ("KHR_texture_basisu", True, "KTX2 (Basis Universal) textures"),
    ],
)
async def test_a_compressed_vrm_is_refused_as_compressed_not_as_no_vrm(
    make_avatar_client: MakeAvatarClient, extension: str, required: bool, words: str
) -> None:
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        await page.set_input_files(
            "#avatar-file",
            {"name": "small.vrm", "mimeType": "", "buffer": compressed_vrm(extension, required)},
        )
        await page.wait_for_selector("#avatar-file-status[data-kind=error]")
        text = await page.inner_text("#avatar-file-status")
        assert f"it uses {words} ({extension}), which this page cannot unpack" in text, text
        assert "not a glTF/VRM model" not in text, text
        assert await page.evaluate("window.holotrackAvatar.generation()") == 1
        assert browser.errors == []


# --- The browser remembers the user's own .vrm (static/avatar/kept_avatar.js) ----------------

DEFAULT_TITLE = "Low-Poly Godette"
FILE_STATUS = "#avatar-file-status"
FORGET = "#avatar-forget"

# Reads or writes the one record kept_avatar.js keeps, behind the page's back: what a
# corrupted disk or another version of the page might leave.
KEPT_RECORD_JS = """(record) => new Promise((resolve, reject) => {
  const opening = indexedDB.open("holotrack-avatar", 1);
  opening.onupgradeneeded = () => opening.result.createObjectStore("avatar");
  opening.onerror = () => reject(opening.error);
  opening.onsuccess = () => {
    const database = opening.result;
    const transaction = database.transaction("avatar", record === null ? "readonly" : "readwrite");
    const store = transaction.objectStore("avatar");
    const request = record === null ? store.get("last") : store.put(record, "last");
    transaction.oncomplete = () => {
      database.close();
      const kept = request.result;
      resolve(record === null ? (kept === undefined ? null : { name: kept.name }) : true);
    };
    transaction.onerror = () => reject(transaction.error);
  };
})"""

# The record as the page writes it, but its bytes no longer a VRM.
CORRUPT_JS = """() => ({
  bytes: new TextEncoder().encode("glTF, cut short by a full disk").buffer,
  name: "mine.vrm",
  type: "application/octet-stream",
})"""
# A record that is not a file at all.
NOT_A_FILE_JS = """() => ({ bytes: "not bytes", name: 42 })"""


def without_bones(*names: str) -> bytes:
    """The shipped avatar with these bones left out of its humanoid's mapping."""

    def edit(doc: dict[str, Any]) -> None:
        humanoid = doc["extensions"]["VRM"]["humanoid"]
        humanoid["humanBones"] = [b for b in humanoid["humanBones"] if b["bone"] not in names]

    return _edited(edit)


def titled_vrm(title: str) -> bytes:
    """The shipped avatar under another title: the view's name() tells it from the default."""

    def edit(doc: dict[str, Any]) -> None:
        doc["extensions"]["VRM"]["meta"]["title"] = title

    return _edited(edit)


async def reload_avatar(page: Page) -> None:
    await page.reload()
    await page.wait_for_selector("body[data-avatar-ready]", state="attached")
    assert await page.get_attribute("body", "data-avatar-ready") == "true"


async def choose_and_keep(page: Page, name: str, data: bytes) -> None:
    """Chooses a .vrm with the picker, until the browser has kept it."""
    await load_model(page, name, data)
    await page.wait_for_function(
        "() => document.getElementById('avatar-file-status').textContent"
        ".includes('remembers it for your next visit')"
    )
    assert await page.is_visible(FORGET)


async def test_the_chosen_vrm_is_shown_again_after_a_reload_until_forgotten(
    make_avatar_client: MakeAvatarClient,
) -> None:
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        assert await page.is_hidden(FORGET)
        assert await page.evaluate("window.holotrackAvatar.name()") == DEFAULT_TITLE
        await choose_and_keep(page, "mine.vrm", titled_vrm("Kept Godette"))
        assert await page.evaluate(KEPT_RECORD_JS, None) == {"name": "mine.vrm"}

        # The next visit opens with it, not with the default first.
        await reload_avatar(page)
        assert await page.evaluate("window.holotrackAvatar.name()") == "Kept Godette"
        assert await page.evaluate("window.holotrackAvatar.generation()") == 1
        text = await page.inner_text(FILE_STATUS)
        assert text.startswith(
            "Showing Kept Godette (VRM 0.x), mine.vrm, remembered from your last visit."
        ), text
        assert await page.get_attribute(FILE_STATUS, "data-kind") == "ok"
        assert await page.is_visible(FORGET)

        # Another choice replaces it.
        await choose_and_keep(page, "other.vrm", titled_vrm("Second Godette"))
        await reload_avatar(page)
        assert await page.evaluate("window.holotrackAvatar.name()") == "Second Godette"
        assert "other.vrm, remembered from your last visit" in await page.inner_text(FILE_STATUS)

        # Forget: the default at once, and on the next visit.
        shown = await page.evaluate("window.holotrackAvatar.generation()")
        await page.click(FORGET)
        await page.wait_for_function(
            "(shown) => window.holotrackAvatar.generation() > shown", arg=shown
        )
        await page.wait_for_selector(f"{FILE_STATUS}[data-kind=info]")
        assert await page.evaluate("window.holotrackAvatar.name()") == DEFAULT_TITLE
        assert "this browser no longer keeps your .vrm" in await page.inner_text(FILE_STATUS)
        assert await page.is_hidden(FORGET)
        assert await page.evaluate(KEPT_RECORD_JS, None) is None
        await reload_avatar(page)
        assert await page.evaluate("window.holotrackAvatar.name()") == DEFAULT_TITLE
        assert await page.is_hidden(FILE_STATUS)
        assert await page.is_hidden(FORGET)
        assert browser.errors == []


# A file named slow.vrm is read only at window.readSlow(): a large file on a slow disk.
SLOW_READ_JS = """() => {
  const read = File.prototype.arrayBuffer;
  let release;
  const released = new Promise((resolve) => { release = resolve; });
  window.readSlow = release;
  File.prototype.arrayBuffer = async function () {
    if (this.name === "slow.vrm") await released;
    return read.call(this);
  };
}"""


async def test_of_two_files_chosen_quickly_the_last_one_shows_and_is_kept(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """A large file chosen, then a small one before the first has loaded: the small one
    stays on show and is the one remembered, though the large one loads last."""
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        await page.evaluate(SLOW_READ_JS)
        slow: FilePayload = {
            "name": "slow.vrm",
            "mimeType": "application/octet-stream",
            "buffer": titled_vrm("Slow Godette"),
        }
        await page.set_input_files("#avatar-file", slow)
        await page.wait_for_function(
            "() => document.getElementById('avatar-file-status').textContent"
            " === 'Loading slow.vrm…'"
        )
        await choose_and_keep(page, "fast.vrm", titled_vrm("Fast Godette"))
        await page.evaluate("window.readSlow()")
        await page.wait_for_function("() => window.holotrackAvatar.overtaken() === 1")
        assert await page.evaluate("window.holotrackAvatar.name()") == "Fast Godette"
        text = await page.inner_text(FILE_STATUS)
        assert text.startswith("Showing Fast Godette (VRM 0.x), from fast.vrm."), text
        assert await page.evaluate(KEPT_RECORD_JS, None) == {"name": "fast.vrm"}
        assert await page.evaluate("window.holotrackAvatar.generation()") == 2
        assert browser.errors == []


@pytest.mark.parametrize(
    ("record_js", "said"),
    [
        (CORRUPT_JS, "mine.vrm, remembered from your last visit, no longer loads"),
        (NOT_A_FILE_JS, "The avatar remembered from your last visit could not be read"),
    ],
    ids=["corrupt-bytes", "not-a-file"],
)
async def test_a_remembered_vrm_that_no_longer_loads_is_forgotten(
    make_avatar_client: MakeAvatarClient, record_js: str, said: str
) -> None:
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        await choose_and_keep(page, "mine.vrm", titled_vrm("Kept Godette"))
        await page.evaluate(f"async () => ({KEPT_RECORD_JS})(({record_js})())")

        await reload_avatar(page)
        assert await page.evaluate("window.holotrackAvatar.name()") == DEFAULT_TITLE
        text = await page.inner_text(FILE_STATUS)
        assert text.startswith(said), text
        assert "forgot it" in text
        assert "showing the default avatar" in text.lower()
        assert await page.get_attribute(FILE_STATUS, "data-kind") == "error"
        assert await page.is_hidden(FORGET)
        assert await page.evaluate(KEPT_RECORD_JS, None) is None
        # Forgotten for good: the next visit is a plain one.
        await reload_avatar(page)
        assert await page.evaluate("window.holotrackAvatar.name()") == DEFAULT_TITLE
        assert await page.is_hidden(FILE_STATUS)
        assert browser.errors == []


async def test_a_browser_that_will_not_store_it_still_shows_the_chosen_vrm(
    make_avatar_client: MakeAvatarClient,
) -> None:
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        # A full disk: IndexedDB refuses every write, as it does past the quota.
        await page.add_init_script(
            """IDBObjectStore.prototype.put = function () {
                 throw new DOMException("the quota is used up", "QuotaExceededError");
               };"""
        )
        await reload_avatar(page)
        await load_model(page, "mine.vrm", titled_vrm("Unkept Godette"))
        await page.wait_for_function(
            "() => document.getElementById('avatar-file-status').textContent"
            ".includes('will not be remembered')"
        )
        text = await page.inner_text(FILE_STATUS)
        assert text.startswith("Showing Unkept Godette (VRM 0.x), from mine.vrm."), text
        assert "the quota is used up" in text
        assert await page.evaluate("window.holotrackAvatar.name()") == "Unkept Godette"
        assert await page.is_hidden(FORGET)
        await reload_avatar(page)
        assert await page.evaluate("window.holotrackAvatar.name()") == DEFAULT_TITLE
        assert browser.errors == []


async def test_after_a_reload_show_it_in_obs_too_has_the_remembered_vrm(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """Before, a reload left the opt-in with no file: ticked again it could send nothing."""
    needs_node_modules()
    client = await make_avatar_client()
    avatars = client.app[LIVE].tokens.avatars
    data = titled_vrm("OBS Godette")
    fake_camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    async with open_page(fake_camera) as browser:
        page = browser.page
        await open_avatar(browser, client)
        await page.click("#avatar-start")
        await page.wait_for_selector("body[data-session]", state="attached")
        await choose_and_keep(page, "mine.vrm", data)
        await page.check("#avatar-obs")
        await page.wait_for_selector("body[data-obs-avatar=sent]", state="attached")
        assert avatars.held() == len(data)

        # Within the link's grace the server still holds it: ticked again, and the
        # remembered file is what OBS shows, as after a fresh choice.
        await reload_avatar(page)
        assert not await page.is_checked("#avatar-obs")  # nothing said it was sent yet
        await page.click("#avatar-start")
        await page.wait_for_function(
            "() => document.getElementById('avatar-obs-status').textContent"
            ".startsWith('OBS shows mine.vrm too')"
        )
        assert await page.is_checked("#avatar-obs")
        assert avatars.held() == len(data)

        # Unticked, the server forgets it; after a reload the box is off, and ticking it
        # sends the remembered file.
        await page.uncheck("#avatar-obs")
        await page.wait_for_function("() => document.body.dataset.obsAvatar === 'off'")
        assert avatars.held() == 0
        await reload_avatar(page)
        await page.click("#avatar-start")
        await page.wait_for_selector("body[data-session]", state="attached")
        assert await page.is_visible("#avatar-obs-box")
        assert not await page.is_checked("#avatar-obs")
        assert avatars.held() == 0
        await page.check("#avatar-obs")
        await page.wait_for_selector("body[data-obs-avatar=sent]", state="attached")
        assert avatars.held() == len(data)
        assert browser.errors == []


async def test_the_watch_view_is_transparent_and_says_why_it_cannot_watch(
    make_avatar_client: MakeAvatarClient,
) -> None:
    unknown = "/avatar?watch=no-such-token-on-this-server"
    async with avatar_page(make_avatar_client, unknown) as browser:
        page = browser.page
        await page.wait_for_selector("body[data-watch-state=error]", state="attached")
        assert await page.is_visible("#watch-status")
        assert "Waiting for this link" in await page.inner_text("#watch-status")
        # The page itself has no background: OBS composites the avatar alone.
        shot = await page.screenshot(omit_background=True)
        assert alpha_at(shot, 0.01, 0.01) == 0
        assert alpha_at(shot, 0.99, 0.3) == 0
        assert opaque(await pixels(page)) > SIZE * SIZE // 20
        # Chromium logs the refused watcher's close itself; nothing else may be logged.
        assert [e for e in browser.errors if "WebSocket" not in e] == []


async def test_a_watch_token_that_is_not_one_is_said_not_waited_for(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """/avatar?watch=garbage retried every few seconds for ever, 'Waiting for this link to
    come back', which no server could ever make happen."""
    async with avatar_page(make_avatar_client, "/avatar?watch=garbage") as browser:
        await browser.page.wait_for_selector("body[data-watch-state=error]", state="attached")
        text = await browser.page.inner_text("#watch-status")
    assert "cut short or not one" in text
    assert "Waiting" not in text


async def test_a_framing_named_after_an_objects_own_property_shows_upper_body(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """?framing=constructor (or toString, __proto__) found Object's own and framed nothing:
    the OBS view was empty. An unknown framing is the upper body, whatever its name."""
    needs_node_modules()
    client = await make_avatar_client()
    async with open_page() as browser:
        for name in ("upper", "constructor", "toString", "__proto__"):
            await open_avatar(browser, client, f"/avatar?watch=garbage&framing={name}")
            assert opaque(await pixels(browser.page)) > SIZE * SIZE // 20, name


async def test_without_webgl_both_views_say_so_and_the_camera_still_starts(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    needs_node_modules()
    client = await make_avatar_client()
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    async with open_page(["--disable-webgl", *fake_camera_args(y4m)]) as browser:
        page = browser.page
        await page.goto(str(client.make_url("/avatar")))
        await page.wait_for_selector("body[data-avatar-ready=false]", state="attached")
        assert "cannot draw 3D graphics" in await page.inner_text("#avatar-file-status")
        assert await page.is_disabled("#avatar-file")
        # The session needs no WebGL: it starts, and the words stay.
        await page.click("#avatar-start")
        await page.wait_for_selector("#avatar-status[data-kind=ok]")
        assert "cannot draw 3D graphics" in await page.inner_text("#avatar-file-status")
        await page.click("#avatar-stop")

        await page.goto(str(client.make_url("/avatar?watch=no-such-token-on-this-server")))
        await page.wait_for_selector("body[data-watch-state=error]", state="attached")
        assert "cannot draw 3D graphics" in await page.inner_text("#watch-status")
        # three.js logs the missing context itself; nothing else may be logged.
        assert [e for e in browser.errors if "WebGL" not in e] == []


# --- Needs the server's rig and watchers (protocol issue 12) ---------------------------------


def record_hellos(page: Page) -> Reported:
    """Every hello the page sends on a WebSocket, parsed, as Playwright reports them: a
    test waits for the nth (`first`), as it may be reported after the page's next session
    is under way."""
    hellos = Reported("hello")
    record_text(page, said=hellos)
    return hellos


async def start_session(browser: BrowserPage) -> None:
    page = browser.page
    await page.click("#avatar-start")
    await page.wait_for_function(
        """() => Number(document.getElementById("avatar-stage").dataset.results) > 5
              || document.getElementById("avatar-status").dataset.kind === "error" """
    )
    assert await page.get_attribute("#avatar-status", "data-kind") != "error", (
        await page.inner_text("#avatar-status")
    )
    rigs = await page.get_attribute("#avatar-stage", "data-rigs")
    assert int(rigs or 0) > 0, "the server's results carry no rig (protocol issue 12)"


@contextlib.asynccontextmanager
async def signer_on_camera(
    make_avatar_client: MakeAvatarClient, tmp_path: Path, config: Config | None = None
) -> AsyncIterator[tuple[BrowserPage, Reported]]:
    """The avatar page of a new server, in a browser whose camera plays the signer, and
    the hellos it sends."""
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=90)
    async with avatar_page(
        make_avatar_client, args=fake_camera_args(y4m), config=config
    ) as browser:
        # The page opens its WebSocket on Start, so no hello has gone yet.
        yield browser, record_hellos(browser.page)


async def session_after(page: Page, old: str | None, within_ms: float | None = None) -> None:
    """Waits for the page to run a session other than `old` (a setting sent in the hello
    starts a new one); within the page's default timeout unless told."""
    await page.wait_for_function(
        "(old) => document.body.dataset.session && document.body.dataset.session !== old",
        arg=old,
        timeout=within_ms,
    )


async def test_start_drives_the_avatar_from_the_servers_rig(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    async with signer_on_camera(make_avatar_client, tmp_path) as (browser, hellos):
        page = browser.page
        await start_session(browser)
        await hellos.first(1)
        assert hellos[0]["rig"] is True
        assert hellos[0]["mirror"] is True
        assert hellos[0]["track"] == "holistic"
        assert "smoothing" not in hellos[0]  # the server's default until the slider moves
        assert (await page.inner_text("#avatar-latency")).endswith(" ms")
        assert opaque(await pixels(page)) > SIZE * SIZE // 20
        # The signer moves her arms and hands: the avatar follows.
        await snapshot(page)
        await wait_for_change(page)

        # The smoothing slider, moved to "smooth", goes in a new session's hello.
        first = await page.get_attribute("body", "data-session")
        await slide(page, "#avatar-smoothing", 10)
        await session_after(page, first)
        *_, hello = await hellos.first(2)
        assert hello["smoothing"] == {"min_cutoff": 0.001, "beta": 0.9}
        assert "blendshapes" not in hello
        # So does asking for ARKit's blendshapes.
        second = await page.get_attribute("body", "data-session")
        await page.check("#avatar-blendshapes")
        await session_after(page, second)
        *_, hello = await hellos.first(3)
        assert hello["blendshapes"] is True
        await page.click("#avatar-stop")
        await page.wait_for_function(
            "() => document.getElementById('avatar-status').textContent === 'Stopped.'"
        )
        assert await page.is_enabled("#avatar-start")
        # The link is kept for the next Start.
        assert "This link stays the same" in await page.inner_text("#watch-share-status")
        assert browser.errors == []


async def test_a_server_taking_no_watchers_gets_no_watch_link_or_relay_command(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    """--max-watchers 0: the page offered a link and a relay command that could only be
    refused."""
    config = Config(workers=1, max_watchers=0)
    async with signer_on_camera(make_avatar_client, tmp_path, config) as (browser, _):
        page = browser.page
        await start_session(browser)
        assert "lets no one watch" in await page.inner_text("#watch-share-status")
        assert await page.get_attribute("#watch-link", "href") is None
        assert await page.is_hidden("#relay-share")
        await page.click("#avatar-stop")
        assert browser.errors == []


async def test_a_server_taking_no_watchers_offers_no_phone_as_the_camera(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """The page follows the phone's session as a watcher: with none allowed, its code led to
    a phone that moved nothing here, and the page asked the server again for ever."""
    client = await make_avatar_client(Config(workers=1, max_watchers=0))
    async with open_page() as browser:
        page = browser.page
        _, received = record_text(page)
        await open_avatar(browser, client)
        await page.click("#phone-share summary")
        await page.wait_for_selector("#phone-status:not([hidden])")
        assert "lets no one watch a session" in await page.inner_text("#phone-status")
        assert await page.is_hidden("#phone-code")
        assert await page.is_hidden("#pair-offer")
        assert not [m for m in received if m.get("type") == "watching"]
        assert browser.errors == []


async def same_link_new_session(streamer: Page, view: Page, token: str | None) -> None:
    """The streamer's page shows `token` again, and the view follows its new session."""
    await streamer.wait_for_function(
        "(token) => document.getElementById('watch-link').dataset.token === token && "
        "!document.getElementById('watch-share').hidden",
        arg=token,
    )
    session = await streamer.get_attribute("body", "data-session")
    await view.wait_for_function(
        "(session) => document.body.dataset.session === session", arg=session
    )
    await snapshot(view)
    await wait_for_change(view)
    assert await view.is_hidden("#watch-status")


async def test_nobody_in_the_picture_is_no_error_and_the_avatar_rests(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """Chromium's own fake camera shows a test pattern: results come, with no pose and so no
    rig. That is someone not yet in front of the camera, not a server without rigs."""
    async with avatar_page(
        make_avatar_client,
        args=["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"],
    ) as browser:
        page = browser.page
        await page.click("#avatar-start")
        await page.wait_for_function(
            "() => Number(document.getElementById('avatar-stage').dataset.results) > 5"
        )
        assert await page.get_attribute("#avatar-stage", "data-rigs") == "0"
        assert await page.inner_text("#avatar-notice") == ""
        assert not await page.evaluate("window.holotrackAvatar.posed()")
        assert await page.evaluate(HAND_DROP_JS) > ARMS_HANG
        assert browser.errors == []


async def test_the_watch_link_outlives_reconnects_restarts_and_reloads(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    """The link pasted into OBS stays the same through a lost connection, a change of
    settings, Stop and Start, and a reload of the page; its watchers stay connected until
    the camera is away longer than the server's --watch-grace, and come back with it."""
    needs_node_modules()
    client = await make_avatar_client(Config(workers=1, no_cache=True, watch_grace=20))
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=90)
    async with open_page(fake_camera_args(y4m)) as streamer, open_page() as watcher:
        await open_avatar(streamer, client)
        hellos = record_hellos(streamer.page)
        camera_sockets = record_socket_urls(streamer.page)
        view_sockets = record_socket_urls(watcher.page)
        await start_session(streamer)
        link = await streamer.page.get_attribute("#watch-link", "href")
        assert link, await streamer.page.inner_text("#watch-share")
        token = await streamer.page.get_attribute("#watch-link", "data-token")
        assert link == str(client.make_url(f"/avatar?watch={token}"))
        # Full body on the page: the link for OBS frames the avatar the same way (it
        # showed the upper body only, legs cut off, whatever the page showed).
        await streamer.page.check("input[name=avatar-framing][value=full]")
        full = await streamer.page.get_attribute("#watch-link", "href")
        assert full == f"{link}&framing=full"
        async with open_page() as framed:
            await open_avatar(framed, client, full.removeprefix(str(client.make_url(""))))
            assert await framed.page.evaluate("window.holotrackAvatar.framing()") == "full"
        await streamer.page.check("input[name=avatar-framing][value=upper]")
        assert await streamer.page.get_attribute("#watch-link", "href") == link

        view = watcher.page
        await open_avatar(watcher, client, link.removeprefix(str(client.make_url(""))))
        session = await streamer.page.get_attribute("body", "data-session")
        await view.wait_for_function(
            "(session) => document.body.dataset.session === session", arg=session
        )
        await view.wait_for_function("() => Number(document.body.dataset.results) > 3")
        assert await view.is_hidden("#watch-status")
        await snapshot(view)
        await wait_for_change(view)
        assert alpha_at(await view.screenshot(omit_background=True), 0.01, 0.01) == 0

        # The camera's connection is lost: the page reconnects by itself, keeps its link,
        # and the view follows the new session without being touched.
        new_session = await cut_camera_session(streamer.page, client.app)
        assert await streamer.page.get_attribute("#watch-link", "data-token") == token
        opening, resumed = await hellos.first(2)
        assert "resume" not in opening
        assert isinstance(resumed["resume"], str)
        await view.wait_for_function(
            "(session) => document.body.dataset.session === session", arg=new_session
        )
        await wait_for_change(view)
        assert await view.is_hidden("#watch-status")

        # A setting that travels in the hello starts a new session: the link stays.
        await streamer.page.check("#avatar-blendshapes")
        await session_after(streamer.page, new_session)
        *_, hello = await hellos.first(3)
        assert hello["blendshapes"] is True
        await same_link_new_session(streamer.page, view, token)
        # So do Stop and Start, and a reload (the page's camera restarts the video). While
        # the camera is stopped the view's avatar, no longer fed, goes back to rest.
        await streamer.page.click("#avatar-stop")
        await streamer.page.wait_for_selector("#avatar-start:enabled")
        await view.wait_for_function("() => !window.holotrackAvatar.posed()")
        await view.wait_for_function(f"() => ({HAND_DROP_JS})() > {ARMS_HANG}")
        assert await view.is_hidden("#watch-status")
        await start_session(streamer)
        await same_link_new_session(streamer.page, view, token)
        await streamer.page.reload()
        await streamer.page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
        await start_session(streamer)
        await same_link_new_session(streamer.page, view, token)
        # The link key takes the link: a resume string beside it would say the camera went
        # on by itself, refused where another camera took the link meanwhile.
        *_, hello = await hellos.first(5)
        assert "resume" not in hello, hello

        # Away longer than the grace, the link ends.
        await streamer.page.click("#avatar-stop")
        await view.wait_for_selector("body[data-watch-state=error]", state="attached")
        text = await view.inner_text("#watch-status")
        assert "The session this view watches has ended" in text
        assert "Waiting for this link" in text
        # A watcher of a session that is gone is refused with 4003 on its next try.
        await view.wait_for_function(
            "() => document.getElementById('watch-status').textContent.includes('not valid')"
        )
        # The next Start brings the same link back all the same (the page's kept key, in
        # every hello): the view, still trying, follows it untouched.
        await start_session(streamer)
        await same_link_new_session(streamer.page, view, token)
        keys = {hello["link_key"] for hello in await hellos.first(6)}
        assert len(keys) == 1, hellos
        # Every connection of the camera and of its view named the link, the camera's first
        # included (the page knew its token from its key): a balancer sends them all to the
        # replica that holds the link (tests/test_cluster.py). The view's say it watches.
        routed = "ws" + str(client.make_url(f"/ws?link={token}")).removeprefix("http")
        assert set(camera_sockets) == {routed}
        assert set(view_sockets) == {f"{routed}&watcher=1"}
        # New link: another key, another link, and the old one ends at once.
        await streamer.page.click("#watch-new")
        await streamer.page.wait_for_function(
            "(token) => !['', undefined, token].includes("
            "document.getElementById('watch-link').dataset.token)",
            arg=token,
        )
        *_, hello = await hellos.first(7)
        assert hello["link_key"] not in keys
        new_token = await streamer.page.get_attribute("#watch-link", "data-token")
        assert camera_sockets[-1].endswith(f"/ws?link={new_token}")
        assert "A new link" in await streamer.page.inner_text("#watch-share-status")
        await view.wait_for_selector("body[data-watch-state=error]", state="attached")
        # Stopped, New link hid the whole section (its New link button too): the new link
        # is shown at once, known from its key, for the next Start.
        await streamer.page.click("#avatar-stop")
        await streamer.page.wait_for_selector("#avatar-start:enabled")
        await streamer.page.click("#watch-new")
        await streamer.page.wait_for_function(
            "(token) => !['', undefined, token].includes("
            "document.getElementById('watch-link').dataset.token)",
            arg=new_token,
        )
        assert await streamer.page.is_visible("#watch-share")
        assert "from your next Start" in await streamer.page.inner_text("#watch-share-status")
        assert streamer.errors == []
        assert [e for e in watcher.errors if "WebSocket" not in e] == []


async def test_a_stream_outlasts_the_servers_session_limit(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    """A camera session is renewed after --max-session-seconds (4004): the page reconnects
    by itself with the same link, and the OBS view (a watcher, bound by the life of its
    link, not by the limit) follows without a word on the stream."""
    needs_node_modules()
    client = await make_avatar_client(Config(workers=1, no_cache=True, max_session_seconds=4))
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=90)
    async with open_page(fake_camera_args(y4m)) as streamer, open_page() as watcher:
        await open_avatar(streamer, client)
        await start_session(streamer)
        token = await streamer.page.get_attribute("#watch-link", "data-token")
        link = await streamer.page.get_attribute("#watch-link", "href")
        assert token
        assert link
        view = watcher.page
        await open_avatar(watcher, client, link.removeprefix(str(client.make_url(""))))
        await view.wait_for_function("() => Number(document.body.dataset.results) > 3")
        said: list[str] = []

        def heard(text: str) -> None:
            said.append(text)

        await view.expose_function("said", heard)
        await view.evaluate(
            """() => new MutationObserver(() => window.said(
                 document.getElementById("watch-status").textContent)).observe(
                 document.getElementById("watch-status"), {childList: true, subtree: true})"""
        )
        first = await streamer.page.get_attribute("body", "data-session")
        await session_after(streamer.page, first, within_ms=30_000)
        await same_link_new_session(streamer.page, view, token)
        assert [text for text in said if text] == []
        assert streamer.errors == []
        assert [e for e in watcher.errors if "WebSocket" not in e] == []


def bones(result: dict[str, Any]) -> dict[str, Quat]:
    return {name: (x, y, z, w) for name, (x, y, z, w) in result["rig"]["bones"].items()}


def degrees_apart(a: Quat, b: Quat) -> float:
    return math.degrees(quat.angle(quat.multiply(quat.inverse(a), b)))


def after_each_hello(sent: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    """The first text message the page sent after each of its hellos (None: none)."""
    starts = [i for i, m in enumerate(sent) if m["type"] == "hello"]
    return [sent[i + 1] if i + 1 < len(sent) else None for i in starts]


Recorded = tuple[BrowserPage, Client, list[dict[str, Any]], list[dict[str, Any]]]


@contextlib.asynccontextmanager
async def recorded_signer_page(
    make_avatar_client: MakeAvatarClient,
    tmp_path: Path,
    heard: Callable[[dict[str, Any]], None] = lambda message: None,
    said: Callable[[dict[str, Any]], None] = lambda message: None,
) -> AsyncIterator[Recorded]:
    """The avatar page of a new server, its camera the signer, not yet started; the page,
    the server, and the text messages the page sends and receives from now on (`heard` is
    told each one received and `said` each one sent, for a test to wait on)."""
    needs_node_modules()
    client = await make_avatar_client()
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=90)
    async with open_page(fake_camera_args(y4m)) as browser:
        await open_avatar(browser, client)
        sent, received = record_text(browser.page, heard, said)
        yield browser, client, sent, received


class CalibratedThenResult:
    """Set once a calibrated answer and a result after it have come, as Playwright reports
    them: the page acts on the answer before the test hears of it, and the rest may be the
    head of a result the server sends just after its answer."""

    def __init__(self) -> None:
        self.answered = False
        self.followed = asyncio.Event()

    def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "calibrated":
            self.answered = True
        elif message["type"] == "result" and self.answered:
            self.followed.set()


async def test_calibrate_sets_straight_ahead_and_the_browser_keeps_it(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    followed = CalibratedThenResult()
    async with recorded_signer_page(make_avatar_client, tmp_path, followed) as signer:
        browser, client, sent, received = signer
        page = browser.page
        assert await page.get_attribute("body", "data-calibrated") == "false"
        assert await page.is_disabled("#avatar-uncalibrate")
        await start_session(browser)
        await page.click("#avatar-calibrate")
        await page.wait_for_selector("body[data-calibrated=true]", state="attached")
        async with asyncio.timeout(30):
            await followed.followed.wait()
        [answer] = [m for m in received if m["type"] == "calibrated"]
        stored = await page.evaluate("() => localStorage.getItem('holotrack.avatar.rest')")
        assert json.loads(stored) == {"head": answer["head"], "gaze": answer["gaze"]}
        # A gaze when that result's face was found with its irises (holistic), else null.
        assert answer["gaze"] is None or len(answer["gaze"]) == 2
        assert "Calibrated" in await page.inner_text("#avatar-calibration")
        # The rest is the head of the last result the server had made (the person's own
        # rotation: the page mirrors), sent just before its answer or just after; the
        # live tests check that the results after it are measured from it.
        split = received.index(answer)
        results = [m for m in received[:split] if m["type"] == "result"][-2:]
        results += [m for m in received[split:] if m["type"] == "result"][:1]
        heads = [head_in_chest(bones(m), mirror=True) for m in results]
        rest = tuple(answer["head"])
        assert min(degrees_apart(h, rest) for h in heads if h is not None) < 0.1

        # A reconnect sends the kept rest before any frame, and so does a Start after a
        # reload.
        await cut_camera_session(page, client.app)
        await page.click("#avatar-stop")
        await page.reload()
        await page.wait_for_selector("body[data-avatar-ready]", state="attached")
        assert await page.get_attribute("body", "data-calibrated") == "true"
        await start_session(browser)
        first, *later = after_each_hello(sent)
        assert first == {"type": "calibrate"}  # the click: no rest was kept before
        assert len(later) == 2
        for message in later:
            assert message is not None
            assert message["type"] == "calibrate"
            # Sent back as the server answered it, renormalized and rounded each time.
            assert message["head"] == pytest.approx(answer["head"], abs=1e-5)
            assert message["gaze"] == answer["gaze"]

        await page.click("#avatar-uncalibrate")
        await page.wait_for_selector("body[data-calibrated=false]", state="attached")
        assert sent[-1] == {"type": "calibrate", "head": None}
        assert await page.evaluate("() => localStorage.getItem('holotrack.avatar.rest')") is None
        assert await page.is_disabled("#avatar-uncalibrate")
        assert browser.errors == []


def expression_above(name: str, least: float) -> str:
    return f"() => window.holotrackAvatar.expressionValue('{name}') > {least}"


def expression_below(name: str, most: float) -> str:
    return f"() => window.holotrackAvatar.expressionValue('{name}') < {most}"


async def test_an_emotion_button_holds_it_on_the_avatar_and_through_a_reconnect(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    """Chosen before Start it goes with the session; another replaces it; the server's
    answer presses the button; back on its link after a lost connection the page takes
    what the link holds (a stream deck's, held meanwhile), and after a reload the server
    says what the link holds; None lets go."""
    told, answers, hellos = Reported("emotion"), Reported("emotion"), Reported("hello")

    def said(message: dict[str, Any]) -> None:
        told(message)
        hellos(message)

    async with recorded_signer_page(make_avatar_client, tmp_path, answers, said) as signer:
        browser, client, sent, _ = signer
        page = browser.page
        assert await page.get_attribute("body", "data-emotion") == "none"
        assert await page.get_attribute("[data-emotion='']", "aria-pressed") == "true"
        # The Godette (VRM 0.x) has no Surprised: its button says so, and still works.
        missing = await page.eval_on_selector_all(
            "#avatar-emotions button.missing", "(all) => all.map((b) => b.dataset.emotion)"
        )
        assert missing == ["surprised"]
        title = await page.get_attribute("button[data-emotion=surprised]", "title")
        assert "The avatar here has no Surprised expression" in (title or "")
        await page.click("button[data-emotion=sad]")
        assert await page.get_attribute("button[data-emotion=sad]", "aria-pressed") == "true"
        await start_session(browser)
        await told.first(1)
        assert after_each_hello(sent) == [{"type": "emotion", "name": "sad"}]
        # The Godette's Sorrow (VRM 0.x), which three-vrm calls sad.
        await page.wait_for_function(expression_above("sad", 0.95))
        await page.click("button[data-emotion=happy]")
        await page.wait_for_function(expression_above("happy", 0.95))
        await page.wait_for_function(expression_below("sad", 0.05))
        # Playwright may report what the page sent, and the answers it acted on, later.
        assert (await told.first(2))[-1] == {"type": "emotion", "name": "happy"}
        assert await answers.first(2) == [
            {"type": "emotion", "name": "sad", "weight": 1.0},
            {"type": "emotion", "name": "happy", "weight": 1.0},
        ]
        pressed = await page.eval_on_selector_all(
            "#avatar-emotions button[aria-pressed=true]", "(all) => all.map((b) => b.textContent)"
        )
        assert pressed == ["Happy"]

        # The network gone a while, and a stream deck holds Sad meanwhile: back, the page
        # does not send its Happy again over the deck's Sad (the link kept what it holds,
        # and says it), as it did.
        network = NetworkDown(page)
        await network.cut()
        session = await page.get_attribute("body", "data-session")
        (camera,) = [s for s in client.app[SESSIONS] if s.name == session]
        assert camera.transport is not None
        before = len(sent)
        camera.transport.abort()
        await network.refused.wait()
        token = await page.get_attribute("#watch-link", "data-token")
        key = await page.evaluate("localStorage.getItem('holotrack.linkKey:avatar')")
        deck = await client.put(
            f"/api/emotion/{token}", json={"name": "sad"}, headers={"Holotrack-Link-Key": key}
        )
        assert deck.status == 200, await deck.text()
        network.back()
        await page.wait_for_selector("body[data-emotion=sad]", state="attached")
        await page.wait_for_function(expression_above("sad", 0.95))
        await hellos.first(2)
        back = sent[before:]
        assert [m["type"] for m in back].count("hello") == 1, back
        assert {"type": "emotion", "name": "happy"} not in back

        # A reload forgets the buttons, not the link's emotion: the server tells the page.
        await page.click("button[data-emotion=angry]")
        await page.wait_for_function(expression_above("angry", 0.95))
        await page.click("#avatar-stop")
        await page.reload()
        await page.wait_for_selector("body[data-avatar-ready]", state="attached")
        assert await page.get_attribute("body", "data-emotion") == "none"
        await start_session(browser)
        await page.wait_for_selector("body[data-emotion=angry]", state="attached")
        assert await page.get_attribute("button[data-emotion=angry]", "aria-pressed") == "true"
        assert await page.evaluate(expression_above("angry", 0.95))

        await page.click("[data-emotion='']")
        await page.wait_for_function(expression_below("angry", 0.05))
        assert (await told.first(4))[-1] == {"type": "emotion", "name": None}
        assert await page.get_attribute("body", "data-emotion") == "none"
        assert browser.errors == []


# An expression chosen on the PC while a phone is the camera, whose PUT fails; then the
# PC's own session resumes the link: what it sends first.
OWED_AFTER_A_FAILED_PUT_JS = """async () => {
  const { EmotionButtons } = await import("/static/avatar/emotion.js");
  const box = document.createElement("div");
  box.innerHTML = '<button data-emotion="">None</button><button data-emotion="happy">Happy</button>'
    + '<input type="range" min="5" max="100" value="100"><output></output>';
  const status = document.createElement("p");
  document.body.append(box, status);
  const emotions = new EmotionButtons({ box, send: () => false, status });
  emotions.phoneIs({ token: "t".repeat(22), linkKey: "k".repeat(22) });
  emotions.choose("happy");
  while (status.hidden) await new Promise((resolve) => setTimeout(resolve, 20));
  emotions.phoneIs(null);
  const sent = [];
  emotions.resend((message) => sent.push(message) > 0, true);
  return sent;
}"""


async def test_an_expression_whose_put_failed_goes_with_the_resumed_session(
    make_client: MakeClient,
) -> None:
    """Its button stayed pressed over an avatar that did not hold it: a resumed session
    sends only what the last connection did not see through, and it counted as seen."""
    client = await make_client(Config(workers=1))
    async with open_page() as browser:
        page = browser.page
        await page.route("**/api/emotion/**", lambda route: route.abort())
        await page.goto(str(client.make_url("/")))
        sent = await page.evaluate(OWED_AFTER_A_FAILED_PUT_JS)
    assert sent == [{"type": "emotion", "name": "happy"}]


def expression_near(name: str, value: float) -> str:
    return f"() => Math.abs(window.holotrackAvatar.expressionValue('{name}') - {value}) < 0.01"


# Every strength the page shows from now on, in order.
RECORD_STRENGTH_JS = """() => {
  window.strengthsShown = [];
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) window.strengthsShown.push(node.textContent);
    }
  }).observe(document.getElementById("avatar-emotion-weight-value"), { childList: true });
}"""


async def slide(page: Page, selector: str, value: int) -> None:
    """A range input moved to `value` and let go: its input events, then its change."""
    await page.eval_on_selector(
        selector,
        """(input, value) => {
             input.value = String(value);
             input.dispatchEvent(new Event("input", { bubbles: true }));
             input.dispatchEvent(new Event("change", { bubbles: true }));
           }""",
        value,
    )


async def test_the_strength_holds_an_emotion_at_part_of_its_weight(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    """Set before a button, the strength goes with it; moved while one is held, it holds
    that one at the new weight; one held over HTTP at a weight moves the slider there; None
    keeps it for the next button."""
    told, answers = Reported("emotion"), Reported("emotion")
    async with recorded_signer_page(make_avatar_client, tmp_path, answers, told) as signer:
        browser, client, sent, _ = signer
        page = browser.page
        assert await page.input_value("#avatar-emotion-weight") == "100"
        await slide(page, "#avatar-emotion-weight", 40)
        assert await page.inner_text("#avatar-emotion-weight-value") == "40%"
        await page.click("button[data-emotion=happy]")
        await start_session(browser)
        await told.first(1)
        assert after_each_hello(sent) == [{"type": "emotion", "name": "happy", "weight": 0.4}]
        await page.wait_for_function(expression_near("happy", 0.4))

        await slide(page, "#avatar-emotion-weight", 70)
        # Playwright may report what the page sent, and the answers it acted on, later.
        assert (await told.first(2))[-1] == {"type": "emotion", "name": "happy", "weight": 0.7}
        await page.wait_for_function(expression_near("happy", 0.7))
        assert [m["weight"] for m in await answers.first(2)] == [0.4, 0.7]

        # Moved three times before any answer comes (arrow keys pressed quickly): the
        # answers to the older two, which come after, do not move it back.
        await page.evaluate(RECORD_STRENGTH_JS)
        await page.evaluate(
            """() => {
                 const input = document.getElementById("avatar-emotion-weight");
                 for (const value of ["60", "50", "40"]) {
                   input.value = value;
                   input.dispatchEvent(new Event("input"));
                   input.dispatchEvent(new Event("change"));
                 }
               }"""
        )
        await page.wait_for_function(expression_near("happy", 0.4))
        strengths = await page.evaluate("window.strengthsShown")
        assert strengths[:3] == ["60%", "50%", "40%"]
        assert set(strengths[3:]) <= {"40%"}
        assert await page.input_value("#avatar-emotion-weight") == "40"
        assert [m["weight"] for m in (await answers.first(5))[2:]] == [0.6, 0.5, 0.4]

        # A stream deck holds Sad at a quarter: the page's slider shows it.
        token = await page.get_attribute("#watch-link", "data-token")
        key = await page.evaluate("localStorage.getItem('holotrack.linkKey:avatar')")
        response = await client.put(
            f"/api/emotion/{token}",
            json={"name": "sad", "weight": 0.25},
            headers={"Holotrack-Link-Key": key},
        )
        assert response.status == 200, await response.text()
        await page.wait_for_selector("body[data-emotion=sad]", state="attached")
        assert await page.input_value("#avatar-emotion-weight") == "25"
        assert await page.inner_text("#avatar-emotion-weight-value") == "25%"
        await page.wait_for_function(expression_near("sad", 0.25))

        await page.click("[data-emotion='']")
        assert (await told.first(6))[-1] == {"type": "emotion", "name": None}
        await page.wait_for_function(expression_below("sad", 0.01))
        assert await page.input_value("#avatar-emotion-weight") == "25"
        await page.click("button[data-emotion=angry]")
        assert (await told.first(7))[-1] == {"type": "emotion", "name": "angry", "weight": 0.25}
        await page.wait_for_function(expression_near("angry", 0.25))
        assert browser.errors == []


async def words_of(command: str) -> list[str]:
    """The words bash makes of `command`, as the program it runs would get them."""
    shell = await asyncio.create_subprocess_exec(
        "bash", "-c", f'set -- {command}; printf "%s\\0" "$@"', stdout=asyncio.subprocess.PIPE
    )
    out, _ = await shell.communicate()
    return out.decode().split("\0")[:-1]


async def test_the_expression_command_holds_the_strength_kept_from_the_last_visit(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    """The slider's strength, kept by the browser, is the one the command holds before any
    choice on this visit, as a press of a button would hold it."""
    async with signer_on_camera(make_avatar_client, tmp_path) as (browser, _):
        page = browser.page
        await slide(page, "#avatar-emotion-weight", 50)
        await page.reload()
        await page.wait_for_selector("body[data-avatar-ready]", state="attached")
        assert await page.input_value("#avatar-emotion-weight") == "50"
        await start_session(browser)
        await page.click("#emotion-share summary")
        assert await page.inner_text("#emotion-named") == "Happy at 50%"
        command = await page.inner_text("#emotion-command")
        assert (await words_of(command))[-1] == '{"name":"happy","weight":0.5}'
        assert browser.errors == []


async def test_the_expression_command_the_page_shows_holds_it_as_written(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    """What a stream deck or a script sends: the page's command, run by a shell as shown,
    holds the expression on the avatar; the page is told and presses the button. The
    command holds what the Expression row shows, at its strength."""
    async with signer_on_camera(make_avatar_client, tmp_path) as (browser, _):
        page = browser.page
        assert await page.is_hidden("#emotion-share")
        await start_session(browser)
        assert await page.is_hidden("#emotion-command")  # folded away: it carries the key
        await page.click("#emotion-share summary")
        assert await page.inner_text("#emotion-named") == "Happy"  # until one is chosen
        command = await page.inner_text("#emotion-command")
        token = await page.get_attribute("#watch-link", "data-token")
        key = await page.evaluate("localStorage.getItem('holotrack.linkKey:avatar')")
        origin = await page.evaluate("location.origin")
        assert await words_of(command) == [
            "curl",
            "-X",
            "PUT",
            f"{origin}/api/emotion/{token}",
            "-H",
            f"Holotrack-Link-Key: {key}",
            "-d",
            '{"name":"happy"}',
        ]
        curl = await asyncio.create_subprocess_exec(
            "bash", "-c", command + " --silent --show-error", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await curl.communicate()
        assert curl.returncode == 0
        assert json.loads(out) == {"name": "happy", "weight": 1.0}
        await page.wait_for_selector("body[data-emotion=happy]", state="attached")
        await page.wait_for_function(expression_above("happy", 0.95))
        # The command follows the Expression row and its strength: set up a stream deck's
        # buttons one by one, choosing each on the page and copying.
        await page.click("button[data-emotion=sad]")
        await slide(page, "#avatar-emotion-weight", 50)
        assert await page.inner_text("#emotion-named") == "Sad at 50%"
        sad = await page.inner_text("#emotion-command")
        assert (await words_of(sad))[-1] == '{"name":"sad","weight":0.5}'
        await page.click("[data-emotion='']")
        assert await page.inner_text("#emotion-named") == "no expression (None)"
        assert (await words_of(await page.inner_text("#emotion-command")))[-1] == '{"name":null}'
        curl = await asyncio.create_subprocess_exec(
            "bash", "-c", sad + " --silent --show-error", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await curl.communicate()
        assert json.loads(out) == {"name": "sad", "weight": 0.5}
        await page.wait_for_selector("body[data-emotion=sad]", state="attached")
        await page.wait_for_function(expression_near("sad", 0.5))
        # An access key, whatever it holds, is quoted so the shell passes it whole.
        odd = 'a"b$c`d\\e'
        under_keys = await page.evaluate(
            """async (key) => (await import("/static/avatar/emotion_share.js"))
                 .emotionCommand("T", "K", key, "sad")""",
            odd,
        )
        assert (await words_of(under_keys))[-4:] == [
            "-H",
            f"Authorization: Bearer {odd}",
            "-d",
            '{"name":"sad"}',
        ]
        assert browser.errors == []


async def test_a_perfect_sync_avatar_follows_the_models_blendshapes(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    async with signer_on_camera(make_avatar_client, tmp_path) as (browser, hellos):
        page = browser.page
        await load_model(page, "perfect_sync.vrm", perfect_sync_vrm())
        status = await page.inner_text("#avatar-file-status")
        assert "Perfect sync: it has 3 of the 51 ARKit blendshapes" in status
        names = await page.evaluate("window.holotrackAvatar.expressionNames()")
        assert set(PERFECT_SYNC) | {"aa", "blinkLeft", "blinkRight"} <= set(names)
        await page.check("#avatar-blendshapes")
        await start_session(browser)
        assert hellos[0]["blendshapes"] is True
        # The signer's open eyes read 0.07-0.45 in the model's eyeBlink (0.16-0.29 median):
        # they reach the model's ARKit-named expressions...
        await page.wait_for_function(
            "() => ['EyeBlinkLeft', 'EyeBlinkRight'].every("
            "(n) => window.holotrackAvatar.expressionValue(n) > 0.05)"
        )
        # ... and the VRM presets they stand for stay at rest, not driven twice.
        presets = await page.evaluate(
            "['aa', 'blinkLeft', 'blinkRight'].map("
            "(n) => window.holotrackAvatar.expressionValue(n))"
        )
        assert presets == [0, 0, 0]
        assert browser.errors == []


async def test_a_model_with_a_few_arkit_clips_keeps_the_presets_none_stands_for(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """A CheekPuff and no EyeBlink or JawOpen: with blendshapes on, its cheek follows them
    and its blinks and mouth still follow the presets, or it would blink no more."""
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        await load_model(page, "cheek.vrm", perfect_sync_vrm({"CheekPuff": "Joy"}))
        await page.evaluate(
            "(rig) => window.holotrackAvatar.apply(rig)",
            {
                "bones": {},
                "expressions": {"blinkLeft": 1.0, "aa": 1.0},
                "blendshapes": {"cheekPuff": 1.0, "eyeBlinkLeft": 0.0, "jawOpen": 0.0},
            },
        )
        await page.wait_for_function(expression_above("CheekPuff", 0.95))
        await page.wait_for_function(expression_above("blinkLeft", 0.95))
        await page.wait_for_function(expression_above("aa", 0.95))
        assert browser.errors == []


# The Godette (VRM 0.x) cannot say that an expression blocks the blinks; a VRM 1.0 model's
# Happy often does ("overrideBlink": "block"), so its Happy is made to, as such a model's is.
BLOCKING_HAPPY_JS = """async () => {
  const { VRMExpressionManager } = await import("@pixiv/three-vrm");
  const update = VRMExpressionManager.prototype.update;
  VRMExpressionManager.prototype.update = function () {
    const happy = this.getExpression("happy");
    if (happy) happy.overrideBlink = "block";
    update.call(this);
    window.blinkMultiplier = this._calculateWeightMultipliers().blink;
  };
}"""


async def test_an_emotion_let_go_gives_the_blinks_back_on_a_model_it_blocks_them_on(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """three-vrm blocks the blinks while a blocking expression's weight is above 0 at all:
    eased toward 0 without end, a Happy let go blocked them for good."""
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        await page.evaluate(BLOCKING_HAPPY_JS)
        apply = "(rig) => window.holotrackAvatar.apply(rig)"
        await page.evaluate(apply, {"bones": {}, "expressions": {"happy": 1.0}})
        await page.wait_for_function(expression_above("happy", 0.95))
        await page.wait_for_function("() => window.blinkMultiplier === 0")
        await page.evaluate(apply, {"bones": {}, "expressions": {"happy": 0.0}})
        # Eased out over a fraction of a second; a minute would not have done it before.
        await page.wait_for_function(
            "() => window.holotrackAvatar.expressionValue('happy') === 0"
            " && window.blinkMultiplier === 1",
            timeout=15_000,
        )
        assert browser.errors == []


async def test_a_vrm0_avatars_surprised_clip_shows_the_held_surprised(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """VRM 0.x has no surprised preset: avatars made for VSeeFace carry a "Surprised" clip,
    which VMC sends the held emotion to (docs/protocol.md). The page shows it too, and its
    button does not say the avatar lacks it."""
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        await load_model(page, "surprised.vrm", surprised_vrm())
        assert "Surprised" in await page.evaluate("window.holotrackAvatar.expressionNames()")
        missing = await page.eval_on_selector_all(
            "#avatar-emotions button.missing", "(all) => all.map((b) => b.dataset.emotion)"
        )
        assert missing == []
        await page.evaluate(
            "(rig) => window.holotrackAvatar.apply(rig)",
            {"bones": {}, "expressions": {"surprised": 1.0}},
        )
        await page.wait_for_function(expression_above("Surprised", 0.95))
        assert browser.errors == []


async def test_a_model_with_eye_bones_looks_with_them(
    make_avatar_client: MakeAvatarClient,
) -> None:
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        # The shipped avatar looks with blend shapes: the rig's look expressions drive them.
        assert (await page.evaluate("window.holotrackAvatar.gaze()"))["bones"] is False
        await load_model(page, "eye_bones.vrm", eye_bones_vrm())
        assert (await page.evaluate("window.holotrackAvatar.gaze()"))["bones"] is True
        # three-vrm's own lookAt, for a point to the model's left (it faces +Z, its left is
        # +X) and above its head: yaw positive, pitch negative, as gaze.js assumes.
        toward = await page.evaluate(
            """() => {
                 const [x, y, z] = window.holotrackAvatar.position("head");
                 return window.holotrackAvatar.anglesToward(x + 1, y + 1, z + 1);
               }"""
        )
        assert toward["yaw"] > 30
        assert toward["pitch"] < -20
        rest = await page.evaluate("window.holotrackAvatar.gaze()")
        # A full look turns the eyes the model's whole range (its ranges map 90 degrees of
        # lookAt to 10 of eye turn), as a full look expression moves its whole blend shape.
        for looks, yaw, pitch in (
            ({"lookLeft": 1.0}, 90, 0),
            ({"lookRight": 1.0, "lookDown": 1.0}, -90, 90),
        ):
            rig = {"bones": {}, "expressions": {**looks, "aa": 0.0}}
            await page.evaluate("(rig) => window.holotrackAvatar.apply(rig)", rig)
            await page.wait_for_function(
                """([yaw, pitch]) => {
                     const gaze = window.holotrackAvatar.gaze();
                     return Math.abs(gaze.yaw - yaw) < 0.5 && Math.abs(gaze.pitch - pitch) < 0.5;
                   }""",
                arg=[yaw, pitch],
            )
            gaze = await page.evaluate("window.holotrackAvatar.gaze()")
            for eye in ("leftEye", "rightEye"):
                turned = math.degrees(2 * math.acos(min(1.0, abs(gaze[eye][3]))))
                if pitch == 0:
                    assert turned == pytest.approx(10, abs=0.2)
                else:
                    assert 13 < turned < 15  # ten degrees each way
            # The look blend shapes, which the bones replace, did not move.
            for name in looks:
                assert (
                    await page.evaluate(
                        "(name) => window.holotrackAvatar.expressionValue(name)", name
                    )
                    == 0
                )
        assert rest["leftEye"] == pytest.approx([0, 0, 0, 1])
        assert browser.errors == []


# A browser's animation frames as pace.js meets them: every 16.7 ms while nothing is drawn,
# and `cost` ms after a drawing. Returns when each drawing began, over a simulated second.
SIMULATED_FRAMES = """async (cost) => {
  const { DrawPace } = await import("/static/avatar/pace.js");
  const pace = new DrawPace();
  const drawings = [];
  for (let now = 0; now < 1000; ) {
    if (pace.shouldDraw(now)) {
      pace.drew(now);
      drawings.push(now);
      now += cost;
    } else {
      now += 1000 / 60;
    }
  }
  return drawings;
}"""


@pytest.mark.parametrize("cost", [5.0, 16.7, 70.0])
async def test_a_slow_drawing_is_followed_by_as_long_a_rest(
    make_avatar_client: MakeAvatarClient, cost: float
) -> None:
    async with avatar_page(make_avatar_client) as browser:
        drawings = await browser.page.evaluate(SIMULATED_FRAMES, cost)
    gaps = [b - a for a, b in itertools.pairwise(drawings)]
    if cost < 25:
        # A GPU's pace: every frame is drawn.
        assert gaps == pytest.approx([cost] * len(gaps))
    else:
        # Drawing in software: after each drawing the renderer rests at least as long,
        # and the next drawing comes on the first frame after that rest.
        assert all(2 * cost <= gap < 2 * cost + 1000 / 60 for gap in gaps), gaps
        busy = cost * len(drawings) / (drawings[-1] + cost)
        assert 0.4 < busy <= 0.5


async def test_the_obs_view_says_it_is_there_while_it_watches(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """A view only listens, so the server's heartbeat (which counts from the last message
    heard) cut it in a 20 s network drop its camera rode out: it sends a keepalive."""
    needs_node_modules()
    client = await make_avatar_client()
    camera = await client.ws_connect("/ws")
    await camera.send_json({"type": "hello", "version": 1, "track": "pose", "rig": True})
    token = (await camera.receive_json())["watch"]
    kept = asyncio.Event()

    def on_socket(socket: WebSocket) -> None:
        def sent(payload: str | bytes) -> None:
            if isinstance(payload, str) and json.loads(payload).get("type") == "keepalive":
                kept.set()

        socket.on("framesent", sent)

    async with open_page() as browser:
        browser.page.on("websocket", on_socket)
        await browser.page.goto(str(client.make_url(f"/avatar?watch={token}")))
        async with asyncio.timeout(60):
            await kept.wait()
    await camera.close()


# What the OBS view says after each close: [words, ms to the next try].
VIEW_CLOSES_JS = """async () => {
  const { afterClose } = await import("/static/avatar/watch.js");
  const seen = (code, wasWatching, attempt) => {
    const next = afterClose({ code, reason: "", wasWatching, attempt });
    return [next.text, next.delay];
  };
  return [seen(1006, true, 0), seen(1000, true, 0), seen(4003, false, 1), seen(1001, true, 0)];
}"""


async def test_the_obs_view_tells_a_lost_connection_from_an_ended_session(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """After a 20 s network drop, which the server noticed on the watcher first (it sends
    nothing, so the heartbeat's ping comes sooner), the view said the session had ended
    and to press Start; the camera's session had gone on all along."""
    async with avatar_page(make_avatar_client) as browser:
        lost, ended, unknown, restart = await browser.page.evaluate(VIEW_CLOSES_JS)
    assert lost[0].startswith("The connection to the server was lost.")
    assert "ended" not in lost[0]
    assert "Start" not in lost[0]
    assert lost[1] == 1000
    assert ended[0].startswith("The session this view watches has ended.")
    assert "next Start" in ended[0]
    assert unknown[0].startswith("This watch link is not valid")
    # After a restart of the server the link is unknown until the page's camera is back,
    # which it is by itself: "the next Start brings it back" sent the streamer to press it.
    assert "by itself after a restart of the server" in unknown[0]
    assert unknown[1] == 6000
    assert "ended" not in restart[0]


async def test_the_obs_view_waits_at_most_ten_seconds_between_tries(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """An OBS view waits for hours: its tries back off, but never to more than 10 s apart,
    so a streamer's Start shows on the stream within seconds however long it waited."""
    async with avatar_page(make_avatar_client) as browser:
        gone, lost, said = await browser.page.evaluate(
            """async () => {
                 const { afterClose } = await import("/static/avatar/watch.js");
                 const delays = (code) => [0, 1, 2, 3, 4, 10, 30, 1000].map((attempt) =>
                   afterClose({ code, reason: "", wasWatching: false, attempt }).delay);
                 const late = afterClose({ code: 4003, wasWatching: false, attempt: 50 });
                 return [delays(4003), delays(1006), late.text];
               }"""
        )
    assert gone == [3000, 6000, 10000, 10000, 10000, 10000, 10000, 10000]
    assert lost == [1000, 2000, 4000, 8000, 10000, 10000, 10000, 10000]
    assert "(next try in 10 s)" in said


async def test_antialiasing_only_with_a_gpu(make_avatar_client: MakeAvatarClient) -> None:
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        renderer, antialias = await page.evaluate(
            """() => {
                 const gl = document.querySelector("canvas.avatar-canvas").getContext("webgl2");
                 const info = gl.getExtension("WEBGL_debug_renderer_info");
                 return [gl.getParameter(info.UNMASKED_RENDERER_WEBGL),
                         gl.getContextAttributes().antialias];
               }"""
        )
        software = await page.evaluate("window.holotrackAvatar.software()")
    # Headless Chromium here draws with SwiftShader; a browser with a GPU names its GPU.
    assert software == ("SwiftShader" in renderer), renderer
    assert antialias is not software


async def test_a_tab_shown_again_draws_at_once(make_avatar_client: MakeAvatarClient) -> None:
    async with avatar_page(make_avatar_client) as browser:
        drawn = await browser.page.evaluate(
            """async () => {
                 const { DrawPace, LONGEST_REST_MS } = await import("/static/avatar/pace.js");
                 const pace = new DrawPace();
                 pace.shouldDraw(0);
                 pace.drew(0);
                 // Hidden for ten seconds: no frames, then one; not a ten-second rest.
                 const back = 10000;
                 return [pace.shouldDraw(back), pace.shouldDraw(back + LONGEST_REST_MS)];
               }"""
        )
    assert drawn == [False, True]


async def test_the_relay_command_the_page_shows_feeds_a_vmc_app_across_stop_and_start(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    """What a VTuber pastes on the PC with VSeeFace: the page's command, run as written (in
    the relay's light install, tests/light_relay.py), with a receiver's port added."""
    async with (
        vmc_receiver() as (port, received),
        signer_on_camera(make_avatar_client, tmp_path) as (browser, _),
    ):
        page = browser.page
        assert await page.is_hidden("#relay-share")
        await start_session(browser)
        command = shlex.split(await page.inner_text("#relay-command"))
        token = await page.get_attribute("#watch-link", "data-token")
        origin = await page.evaluate("location.host")
        assert command[:3] == ["python", "-m", "webapp.vmc.relay"]
        assert command[3:] == ["--watch", f"ws://{origin}/ws", f"--token={token}", "--wait"]
        relay = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "tests" / "light_relay.py"), *command[3:],
            "--to", f"127.0.0.1:{port}", stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        said: list[bytes] = []
        try:
            await asyncio.wait_for(received.wait_frames(3), 90)
            # Stop and Start: the link is kept, and the relay (--wait) forwards the next stream.
            await page.click("#avatar-stop")
            await page.wait_for_selector("#avatar-start:enabled")
            await start_session(browser)
            # Counted from Start, the frames could all be the old session's last or the rest
            # pose the relay sends its receivers while nothing comes: the link lost, it passed.
            session = await page.get_attribute("body", "data-session")
            assert relay.stderr is not None
            watching = f"watching session {session},".encode()
            async with asyncio.timeout(90):
                while (line := await relay.stderr.readline()) and watching not in line:
                    said.append(line)
            said.append(line)
            assert watching in line, b"".join(said).decode()
            before = received.frames
            await asyncio.wait_for(received.wait_frames(before + 3), 90)
            assert relay.returncode is None
            # Copy command puts it on the clipboard, as shown.
            await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
            await page.click("#relay-copy")
            await page.wait_for_selector("#relay-status:not([hidden])")
            assert await page.inner_text("#relay-status") == "Command copied."
            assert await page.evaluate("navigator.clipboard.readText()") == shlex.join(command)
            # So does Copy link with the OBS link, in the same words.
            await page.click("#watch-copy")
            await page.wait_for_selector("#watch-share-status:not([hidden])")
            assert await page.inner_text("#watch-share-status") == "Link copied."
            link = await page.get_attribute("#watch-link", "href")
            assert await page.evaluate("navigator.clipboard.readText()") == link
            # A new link's command is another: "Command copied." stayed under it, the
            # clipboard holding the old one.
            await page.click("#watch-new")
            await page.wait_for_function(
                "(old) => document.getElementById('relay-command').textContent !== old",
                arg=shlex.join(command),
            )
            assert await page.is_hidden("#relay-status")
        finally:
            if relay.returncode is None:
                relay.terminate()
            _, err = await relay.communicate()
        err = b"".join(said) + err
        assert "Traceback" not in err.decode(), err.decode()
        assert browser.errors == []


@contextlib.asynccontextmanager
async def sending_vmc(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> AsyncIterator[tuple[BrowserPage, Reported, int, Received]]:
    """The signer on camera, the page sending VMC to a real receiver the server allows, once
    three of its frames have come: the page, its hellos, the receiver's port and what it
    received."""
    async with vmc_receiver() as (port, received):
        config = Config(workers=1, no_cache=True, vmc_allow=f"127.0.0.1:{port}")
        async with signer_on_camera(make_avatar_client, tmp_path, config) as (browser, hellos):
            await browser.page.fill("#avatar-vmc", f"127.0.0.1:{port}")
            await start_session(browser)
            await received.wait_frames(3)
            yield browser, hellos, port, received


async def test_a_receiver_typed_full_width_is_the_receiver_meant(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    """A Japanese or Chinese input method left on types the address full-width: the page
    said it had no port, the colon being another."""
    async with vmc_receiver() as (port, received):
        config = Config(workers=1, no_cache=True, vmc_allow=f"127.0.0.1:{port}")
        async with signer_on_camera(make_avatar_client, tmp_path, config) as (browser, hellos):
            typed = "".join(chr(ord(ch) - 0x21 + 0xFF01) for ch in f"127.0.0.1:{port}")
            await browser.page.fill("#avatar-vmc", f"\u3000{typed}")
            await start_session(browser)
            assert await browser.page.is_hidden("#avatar-vmc-status")
            assert hellos[0]["vmc"] == [{"host": "127.0.0.1", "port": port}]
            await received.wait_frames(3)
            assert browser.errors == []


async def test_the_page_sends_vmc_to_the_receivers_the_server_allows(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    async with sending_vmc(make_avatar_client, tmp_path) as (browser, hellos, port, received):
        page = browser.page
        assert hellos[0]["vmc"] == [{"host": "127.0.0.1", "port": port}]
        # A receiver written without its port: the page says so next to the box, and the
        # running session goes on, still sending, rather than the server ending it.
        session = await page.get_attribute("body", "data-session")
        sent = len(hellos)
        await page.fill("#avatar-vmc", "127.0.0.1")
        await page.dispatch_event("#avatar-vmc", "change")
        await page.wait_for_function(
            """() => !document.getElementById("avatar-vmc-status")?.hidden
                  || document.getElementById("avatar-status").dataset.kind === "error" """
        )
        # Without a word next to the box, what the page said instead.
        problem = await page.evaluate(
            """() => (document.getElementById("avatar-vmc-status")
                      ?? document.getElementById("avatar-status")).textContent"""
        )
        assert problem.startswith("127.0.0.1 has no port. Write HOST:PORT"), problem
        results = int(await page.get_attribute("#avatar-stage", "data-results") or 0)
        await page.wait_for_function(
            "n => Number(document.getElementById('avatar-stage').dataset.results) > n + 3",
            arg=results,
        )
        assert await page.get_attribute("body", "data-session") == session
        assert len(hellos) == sent
        assert await page.get_attribute("#avatar-status", "data-kind") == "ok"
        assert await page.is_enabled("#avatar-stop")
        # A receiver the operator did not list: the server closes the session that asked
        # for it. The page goes back to the receiver in use and goes on with it, saying
        # why next to the box: the avatar, the OBS view and VSeeFace stopped mid-stream.
        await page.fill("#avatar-vmc", "127.0.0.1:1")
        await page.dispatch_event("#avatar-vmc", "change")
        await page.wait_for_function(
            """() => document.getElementById("avatar-vmc-status").textContent
                  .includes("--vmc-allow")"""
        )
        said = await page.inner_text("#avatar-vmc-status")
        assert said.startswith("Not changed: VMC to 127.0.0.1:1 is not allowed"), said
        assert await page.input_value("#avatar-vmc") == f"127.0.0.1:{port}"
        refused, back = hellos[-2:]
        assert refused["vmc"] == [{"host": "127.0.0.1", "port": 1}]
        assert back["vmc"] == [{"host": "127.0.0.1", "port": port}]
        assert back["link_key"] == refused["link_key"]  # the same link, the OBS view's
        frames = received.frames
        await received.wait_frames(frames + 3)
        assert await page.get_attribute("#avatar-status", "data-kind") == "ok"
        assert await page.is_enabled("#avatar-stop")
        # Stopped, then started with one not listed: nothing in use to go back to (the
        # receiver just removed), so the session ends and the page says why.
        await page.click("#avatar-stop")
        await page.wait_for_selector("#avatar-start:enabled")
        await page.fill("#avatar-vmc", "127.0.0.1:1")
        await page.dispatch_event("#avatar-vmc", "change")
        await page.click("#avatar-start")
        await page.wait_for_function(
            """() => document.getElementById("avatar-status").textContent
                  .includes("--vmc-allow")"""
        )
        assert await page.input_value("#avatar-vmc") == "127.0.0.1:1"
        assert browser.errors == []
    bones = {args[0] for address, args in received.messages if address == "/VMC/Ext/Bone/Pos"}
    assert {"Hips", "Head", "LeftUpperArm"} <= bones


async def test_a_receiver_written_wrong_keeps_those_in_use_through_a_settings_change(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    """A typo in the VMC box says so and leaves the session sending; Mirror changed next
    starts a new session, which must go on sending to the receivers in use, not to none."""
    async with sending_vmc(make_avatar_client, tmp_path) as (browser, hellos, port, received):
        page = browser.page
        await page.fill("#avatar-vmc", "127.0.0.1")
        await page.dispatch_event("#avatar-vmc", "change")
        await page.wait_for_selector("#avatar-vmc-status:not([hidden])")
        session = await page.get_attribute("body", "data-session")
        await page.click("#avatar-mirror")
        await session_after(page, session)
        *_, hello = await hellos.first(2)
        assert hello["mirror"] is False
        assert hello["vmc"] == [{"host": "127.0.0.1", "port": port}]
        # The new session's own rigs reach the receiver, not only the old one's rest.
        frames = received.frames
        await received.wait_frames(frames + 5)
        assert await page.input_value("#avatar-vmc") == "127.0.0.1"
        assert not await page.is_hidden("#avatar-vmc-status")
        assert browser.errors == []


async def test_the_pages_settings_come_back_on_the_next_visit(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    """A streamer opens the page before each stream: Mirror, the smoothing, ARKit
    blendshapes, the VMC receivers, Show camera, the framing and the strength are as they
    were left, and the next Start's hello carries them."""
    async with vmc_receiver() as (port, received):
        config = Config(workers=1, no_cache=True, vmc_allow=f"127.0.0.1:{port}")
        async with signer_on_camera(make_avatar_client, tmp_path, config) as (browser, hellos):
            page = browser.page
            await page.uncheck("#avatar-mirror")
            await slide(page, "#avatar-smoothing", 8)
            await page.check("#avatar-blendshapes")
            await page.fill("#avatar-vmc", f"127.0.0.1:{port}")
            await page.dispatch_event("#avatar-vmc", "change")
            await page.uncheck("#avatar-show-camera")
            await page.check("input[name=avatar-framing][value=full]")
            await slide(page, "#avatar-emotion-weight", 40)
            smoothing = await page.inner_text("#avatar-smoothing-value")
            assert smoothing.endswith(" Hz, β 1.46"), smoothing

            await page.reload()
            await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
            assert not await page.is_checked("#avatar-mirror")
            assert await page.input_value("#avatar-smoothing") == "8"
            assert await page.inner_text("#avatar-smoothing-value") == smoothing
            assert await page.is_checked("#avatar-blendshapes")
            assert await page.input_value("#avatar-vmc") == f"127.0.0.1:{port}"
            assert not await page.is_checked("#avatar-show-camera")
            assert await page.is_hidden("#avatar-stage")
            assert await page.is_checked("input[name=avatar-framing][value=full]")
            assert await page.evaluate("window.holotrackAvatar.framing()") == "full"
            assert await page.input_value("#avatar-emotion-weight") == "40"
            assert await page.inner_text("#avatar-emotion-weight-value") == "40%"

            told = Reported("emotion")
            record_text(page, said=told)
            await start_session(browser)
            [hello] = await hellos.first(1)
            assert hello["mirror"] is False
            min_cutoff, beta = hello["smoothing"]["min_cutoff"], hello["smoothing"]["beta"]
            assert smoothing == f"{min_cutoff} Hz, β {beta}"
            assert hello["blendshapes"] is True
            assert hello["vmc"] == [{"host": "127.0.0.1", "port": port}]
            await received.wait_frames(3)
            # Kept from the last visit, the strength goes with the next button pressed.
            await page.click("button[data-emotion=happy]")
            await page.wait_for_function(expression_near("happy", 0.4))
            # Playwright may report what the page sent after the page has acted on the answer.
            assert await told.first(1) == [{"type": "emotion", "name": "happy", "weight": 0.4}]
            assert len(told) == 1, told
            assert browser.errors == []


async def test_settings_the_browser_will_not_keep_hold_for_the_visit(
    make_avatar_client: MakeAvatarClient,
) -> None:
    """Storage refused (a sandboxed frame, a full disk) or holding something else under the
    page's name: the page opens with its defaults and its controls still work."""
    async with avatar_page(make_avatar_client) as browser:
        page = browser.page
        await page.evaluate(
            """() => {
                 localStorage.setItem("holotrack.avatar.controls", "[not json");
                 localStorage.setItem("holotrack.avatar.strength",
                                      JSON.stringify({"avatar-emotion-weight": true}));
               }"""
        )
        await page.reload()
        await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
        assert await page.is_checked("#avatar-mirror")
        assert await page.input_value("#avatar-emotion-weight") == "100"
        assert await page.inner_text("#avatar-smoothing-value") == "server's default"
        await page.add_init_script(
            """Storage.prototype.setItem = () => {
                 throw new DOMException("full", "QuotaExceededError");
               };"""
        )
        await page.reload()
        await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
        await page.uncheck("#avatar-mirror")
        assert (
            await page.evaluate(
                "document.getElementById('avatar-stage').classList.contains('mirrored')"
            )
            is False
        )
        await slide(page, "#avatar-smoothing", 2)
        assert (await page.inner_text("#avatar-smoothing-value")).endswith(" Hz, β 6.18")
        assert browser.errors == []


async def test_the_smoothing_slider_moved_by_its_keys_starts_one_session(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    """Each arrow key fires the slider's change: four presses started four sessions, each
    read out as "Connecting…" and a gap in the avatar, the OBS view and VMC."""
    async with signer_on_camera(make_avatar_client, tmp_path) as (browser, hellos):
        page = browser.page
        await start_session(browser)
        first = await page.get_attribute("body", "data-session")
        await page.focus("#avatar-smoothing")
        for _ in range(4):
            await page.keyboard.press("ArrowRight")
        await session_after(page, first)
        # Results of the new session: any other the keys started would be under way by now.
        since = int(await page.get_attribute("#avatar-stage", "data-results") or 0)
        await page.wait_for_function(
            "(n) => Number(document.getElementById('avatar-stage').dataset.results) > n + 5",
            arg=since,
        )
        assert await page.input_value("#avatar-smoothing") == "9"
        *_, hello = await hellos.first(2)
        assert len(hellos) == 2, hellos
        assert hello["smoothing"]["min_cutoff"] < 0.02  # smoother than the default's
        await page.click("#avatar-stop")
        assert browser.errors == []


async def test_a_keyed_smoothing_move_then_mirror_starts_one_session(
    make_avatar_client: MakeAvatarClient, tmp_path: Path
) -> None:
    """Mirror clicked while a keyed smoothing move settled: its session carried both, and
    the settled move started another 0.7 s on."""
    async with signer_on_camera(make_avatar_client, tmp_path) as (browser, hellos):
        page = browser.page
        await start_session(browser)
        first = await page.get_attribute("body", "data-session")
        await page.focus("#avatar-smoothing")
        await page.keyboard.press("ArrowRight")
        await page.click("#avatar-mirror")
        await session_after(page, first)
        # Results of the new session, past the 0.7 s a settling move waits.
        since = int(await page.get_attribute("#avatar-stage", "data-results") or 0)
        await page.wait_for_function(
            "(n) => Number(document.getElementById('avatar-stage').dataset.results) > n + 12",
            arg=since,
        )
        *_, hello = await hellos.first(2)
        assert len(hellos) == 2, hellos
        assert hello["mirror"] is False
        await page.click("#avatar-stop")
        assert browser.errors == []
