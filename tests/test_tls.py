"""HTTPS and wss:// served by the server itself: --self-signed, --tls-cert/--tls-key.

A phone's browser opens a camera only on a secure origin; these run the real server as an
operator would (`python -m webapp`) and reach it over TLS like a phone would.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.common import free_port
from tests.browser import fake_camera_args, open_page, write_y4m
from tests.live import frame_message, video_frames
from tests.media import ASL_VIDEO
from tests.test_lifecycle import serving, webapp_command
from webapp import tls
from webapp.__main__ import tls_context
from webapp.config import load_config


def trusting(cert: Path) -> ssl.SSLContext:
    """A client context that trusts only `cert`, checking the host name as browsers do."""
    return ssl.create_default_context(cafile=str(cert))


def fingerprint(cert: Path) -> bytes:
    return x509.load_pem_x509_certificate(cert.read_bytes()).fingerprint(hashes.SHA256())


async def next_result(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = await ws.receive_json(timeout=60)
        if message["type"] == "result":
            return message
        assert message["type"] in {"stats", "turn"}, message


async def test_self_signed_serves_https_and_wss_and_is_reused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cert_path = state / tls.CERT_FILE
    port, local_port = free_port(), free_port()
    flags = ["--self-signed", "--state-dir", str(state)]
    async with serving(port, *flags, "--local-http-port", str(local_port)) as server:
        log = server.lines
        assert any("made a new self-signed certificate" in line for line in log), log
        assert any(f"https://127.0.0.1:{port}/" in line for line in log), log
        context = trusting(cert_path)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"https://127.0.0.1:{port}/healthz", ssl=context) as reply:
                assert reply.status == 200
            # The name, not only the address, is in the certificate.
            async with http.get(
                f"https://127.0.0.1:{port}/healthz", ssl=context, server_hostname="localhost"
            ) as reply:
                assert reply.status == 200
            frames = video_frames(ASL_VIDEO)
            async with http.ws_connect(f"wss://127.0.0.1:{port}/ws", ssl=context) as ws:
                await ws.send_json({"type": "hello", "version": 1, "track": "pose", "fps": 10})
                ready = await ws.receive_json(timeout=60)
                assert ready["type"] == "ready"
                await ws.send_bytes(frame_message(0, 0.0, frames[0]))
                result = await next_result(ws)
                assert result["seq"] == 0
                assert len(result["landmarks"]["pose"]) == 33, result
                # OBS on this machine watches over plain HTTP on loopback.
                async with http.get(f"http://127.0.0.1:{local_port}/avatar") as reply:
                    assert reply.status == 200
                async with http.ws_connect(f"ws://127.0.0.1:{local_port}/ws") as watcher:
                    await watcher.send_json(
                        {"type": "watch", "version": 1, "token": ready["watch"]}
                    )
                    assert (await watcher.receive_json(timeout=60))["type"] == "watching"
                    await ws.send_bytes(frame_message(1, 100.0, frames[1]))
                    assert (await next_result(watcher))["seq"] == 1

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("::1") in san.get_values_for_type(x509.IPAddress)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert (state / tls.KEY_FILE).stat().st_mode & 0o777 == 0o600
    first = fingerprint(cert_path)

    async with serving(port, "--self-signed", "--state-dir", str(state)) as server:
        log = server.lines
        assert any("reusing the self-signed certificate" in line for line in log), log
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"https://127.0.0.1:{port}/healthz", ssl=trusting(cert_path)) as reply,
        ):
            assert reply.status == 200
    assert fingerprint(cert_path) == first


def test_the_kept_certificate_is_remade_when_it_expires_or_an_address_is_missing(
    tmp_path: Path,
) -> None:
    names = tls.MachineNames(
        frozenset({"localhost"}), frozenset({ipaddress.ip_address("127.0.0.1")})
    )
    made = tls.self_signed(tmp_path, names)
    assert not made.reused
    assert tls.self_signed(tmp_path, names).fingerprint == made.fingerprint
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=400)
    expired = tls.self_signed(tmp_path, names, now=later)
    assert not expired.reused
    assert expired.fingerprint != made.fingerprint
    moved = tls.MachineNames(names.dns, names.ips | {ipaddress.ip_address("192.0.2.7")})
    remade = tls.self_signed(tmp_path, moved)
    assert not remade.reused
    assert remade.fingerprint != expired.fingerprint
    assert tls.self_signed(tmp_path, moved).reused


def test_machine_names_cover_the_loopback_names() -> None:
    names = tls.machine_names()
    assert {"localhost"} <= names.dns
    assert {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")} <= names.ips
    assert not any(a.version == 6 and a.is_link_local for a in names.ips)


def test_a_phone_is_offered_the_home_network_first() -> None:
    """The pages' QR codes lead to the first origin: not Docker's bridge (172.17.0.1)."""
    ips = ["127.0.0.1", "::1", "172.17.0.1", "203.0.113.5", "10.88.0.1", "192.168.1.20"]
    names = tls.MachineNames(frozenset({"localhost"}), frozenset(map(ipaddress.ip_address, ips)))
    assert tls.phone_origins("0.0.0.0", 8443, names) == [
        "https://192.168.1.20:8443",
        "https://10.88.0.1:8443",
        "https://172.17.0.1:8443",
        "https://203.0.113.5:8443",
    ]
    assert tls.phone_origins("127.0.0.1", 8443, names) == []
    assert tls.phone_origins("192.168.1.20", 8443, names) == ["https://192.168.1.20:8443"]


def make_pair(
    directory: Path, name: str, alt_names: Sequence[x509.GeneralName] = ()
) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and `alt_names`) and its key, as an operator's CA
    would hand them out."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), *alt_names]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize(("port", "suffix"), [(8443, ":8443"), (443, "")])
def test_a_given_certificates_names_are_where_a_phone_opens_the_pages(
    tmp_path: Path, port: int, suffix: str
) -> None:
    names: list[x509.GeneralName] = [
        x509.DNSName("*.example.org"),  # no one host to open
        x509.DNSName("localhost"),  # the phone itself
        x509.DNSName("holotrack.example.org"),
        x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
        x509.IPAddress(ipaddress.ip_address("192.0.2.9")),
    ]
    cert, _ = make_pair(tmp_path, "named", names)
    assert tls.certificate_origins(cert, port) == [
        f"https://holotrack.example.org{suffix}",
        f"https://192.0.2.9{suffix}",
        f"https://[2001:db8::1]{suffix}",
    ]
    assert tls.certificate_origins(tmp_path / "gone.crt", port) == []


def test_a_server_on_loopback_names_no_phone_origins_from_its_certificate(
    tmp_path: Path,
) -> None:
    """--tls-cert with --host 127.0.0.1: the avatar page drew a code for the certificate's
    names, where no phone reaches the server. On the network the names are where it does."""
    names = [x509.DNSName("holotrack.example.org")]
    cert, key = make_pair(tmp_path, "named", names)
    flags = ["--tls-cert", str(cert), "--tls-key", str(key), "--port", "8443"]
    for host in ("127.0.0.1", "localhost", "::1"):
        context, origins = tls_context(load_config([*flags, "--host", host], {}))
        assert context is not None
        assert origins == (), host
    _, origins = tls_context(load_config([*flags, "--host", "0.0.0.0"], {}))
    assert origins == ("https://holotrack.example.org:8443",)


def test_a_state_dir_from_home_is_kept_at_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HOLOTRACK_STATE_DIR=~/holotrack, as a compose file or a systemd unit gives it with no
    shell to expand it: the certificate and its key went into ./~/holotrack."""
    home, started = tmp_path / "home", tmp_path / "started"
    started.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(started)
    context, _ = tls_context(
        load_config(["--self-signed"], {"HOLOTRACK_STATE_DIR": "~/holotrack"}, read_files=False)
    )
    assert context is not None
    assert (home / "holotrack" / tls.KEY_FILE).is_file()
    assert list(started.iterdir()) == []


def refused(flags: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        webapp_command(free_port(), *flags),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_unusable_certificate_files_stop_the_start_with_one_line(tmp_path: Path) -> None:
    cert, key = make_pair(tmp_path, "ours")
    _, other_key = make_pair(tmp_path, "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    for flags, expected in [
        (["--tls-cert", str(cert), "--tls-key", str(other_key)], "does not match"),
        (["--tls-cert", str(tmp_path / "absent.crt"), "--tls-key", str(key)], "absent.crt"),
        (["--tls-cert", str(garbage), "--tls-key", str(key)], "garbage.pem"),
    ]:
        done = refused(flags)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1, done.stderr
        assert expected in lines[0]
        assert lines[0].startswith("python -m webapp: error: ")
    for flags in (["--tls-cert", str(cert)], ["--tls-key", str(key)]):
        done = refused(flags)
        assert done.returncode == 2, done.stderr
        assert "--tls-cert and --tls-key go together" in done.stderr


def test_a_key_with_a_passphrase_is_refused_in_one_line_without_a_prompt(
    tmp_path: Path,
) -> None:
    cert, key = make_pair(tmp_path, "ours")
    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
    key.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(tls.TlsError, match="encrypted with a passphrase"):
        tls.server_context(cert, key)


@pytest.mark.parametrize(
    "argv",
    [
        ["--local-http-port", "8081"],
        ["--self-signed", "--port", "8081", "--local-http-port", "8081"],
        ["--self-signed", "--tls-cert", "a.crt", "--tls-key", "a.key"],
    ],
)
def test_flags_that_do_not_go_together_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load_config(argv, environ={})
    assert exited.value.code == 2


async def test_given_certificate_and_key_are_served(tmp_path: Path) -> None:
    cert, key = make_pair(tmp_path, "ours")
    port = free_port()
    async with (
        serving(port, "--tls-cert", str(cert), "--tls-key", str(key)),
        aiohttp.ClientSession() as http,
        http.get(f"https://127.0.0.1:{port}/healthz", ssl=trusting(cert)) as reply,
    ):
        assert reply.status == 200


@pytest.mark.browser
async def test_chromium_tracks_its_camera_over_https_and_wss(tmp_path: Path) -> None:
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=75)
    port = free_port()
    args = [*fake_camera_args(y4m), "--ignore-certificate-errors"]
    async with (
        serving(port, "--self-signed", "--state-dir", str(tmp_path / "state")),
        open_page(args) as browser,
    ):
        page = browser.page
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        await page.set_viewport_size({"width": 390, "height": 844})  # a phone
        await page.goto(f"https://127.0.0.1:{port}/")
        await page.wait_for_selector("body[data-live-ready]", state="attached")
        assert await page.evaluate("() => window.isSecureContext")
        await page.click("#live-start")
        await page.wait_for_function(
            """() => Number(document.getElementById("live-results").textContent) > 0
                  || document.getElementById("live-status").dataset.kind === "error" """
        )
        assert await page.get_attribute("#live-status", "data-kind") != "error", (
            await page.inner_text("#live-status")
        )
        assert (await page.inner_text("#live-latency")).endswith(" ms")
        assert sockets == [f"wss://127.0.0.1:{port}/ws"]
        # On a phone's width, nothing sticks out sideways.
        assert await page.evaluate(
            "() => document.documentElement.scrollWidth <= window.innerWidth"
        )
        await page.click("#live-stop")

        for path in ("/avatar", "/fitness", "/coach"):
            await page.goto(f"https://127.0.0.1:{port}{path}")
            await page.wait_for_load_state("load")
            assert await page.evaluate(
                "() => document.documentElement.scrollWidth <= window.innerWidth"
            ), path
        assert browser.errors == []
