"""HTTPS for the server: a certificate the operator gives, or one made for this machine and kept.

Browsers open a camera only on a secure origin, so a phone on the LAN needs https. A
self-signed certificate names every address of this machine; it is kept in the state folder
and reused while it is valid and still covers them, so a phone that accepted it once keeps
working. It is remade when it expires or the machine's addresses change.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import socket
import ssl
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CERT_FILE = "self-signed-cert.pem"
KEY_FILE = "self-signed-key.pem"
VALID_FOR = datetime.timedelta(days=365)
# Remade a little before it expires, so a server started today does not stop working tonight.
RENEW_BEFORE = datetime.timedelta(days=7)
# A phone's clock may run a little behind this machine's.
BACKDATE = datetime.timedelta(hours=1)


class TlsError(Exception):
    """A certificate, key or state folder that cannot be used: one line for the operator."""


@dataclass(frozen=True)
class MachineNames:
    """What a client may type to reach this machine: its names and its addresses."""

    dns: frozenset[str]
    ips: frozenset[IPAddress]


@dataclass(frozen=True)
class SelfSigned:
    cert: Path
    key: Path
    fingerprint: str
    not_after: datetime.datetime
    reused: bool


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context for `cert` and `key`, or a TlsError naming what is wrong with them."""
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            path.read_bytes()
        except OSError as exc:
            raise TlsError(f"{flag} {path}: {exc.strerror or exc}") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)

    def no_passphrase() -> str:
        # Without a callback OpenSSL asks for the passphrase on the terminal: a server
        # started by hand waited at a prompt, and one without a terminal died with an
        # OSError traceback. Asked only when the key is encrypted.
        raise TlsError(
            f"--tls-key {key} is encrypted with a passphrase, which the server cannot ask "
            f"for: give it the key decrypted (openssl pkey -in KEY -out PLAIN_KEY)"
        )

    try:
        context.load_cert_chain(cert, key, password=no_passphrase)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise TlsError(f"--tls-key {key} does not match the certificate {cert}") from None
        raise TlsError(
            f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate and key "
            f"({exc.reason or exc})"
        ) from None
    return context


def machine_names() -> MachineNames:
    """This machine's names and addresses, found without the network: the hostname's own
    addresses and every interface's (`ip -j addr`, where `ip` exists).

    IPv6 link-local addresses are left out: a browser cannot open a URL with one.
    """
    hostname = socket.gethostname()
    dns = {"localhost"}
    if hostname:
        dns.add(hostname)
        if "." not in hostname:
            dns.add(f"{hostname}.local")  # what a phone resolves over mDNS
    ips: set[IPAddress] = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    ips.update(a for a in _interface_addresses(hostname) if _reachable(a))
    return MachineNames(frozenset(dns), frozenset(ips))


def _interface_addresses(hostname: str) -> Iterable[IPAddress]:
    found: list[str] = []
    with contextlib.suppress(OSError):
        found += [str(info[4][0]) for info in socket.getaddrinfo(hostname, None)]
    try:
        listing = subprocess.run(
            ["ip", "-j", "addr"], capture_output=True, text=True, timeout=5, check=True
        ).stdout
        found += [a["local"] for i in json.loads(listing) for a in i.get("addr_info", ())]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        pass
    for text in found:
        try:
            yield ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            continue


def _reachable(address: IPAddress) -> bool:
    return not (
        address.is_loopback
        or address.is_unspecified
        or address.is_multicast
        or (address.version == 6 and address.is_link_local)
    )


def self_signed(
    state_dir: Path, names: MachineNames, now: datetime.datetime | None = None
) -> SelfSigned:
    """The kept certificate when it is still valid and covers `names`; otherwise a new one."""
    now = now or datetime.datetime.now(datetime.UTC)
    cert_path, key_path = state_dir / CERT_FILE, state_dir / KEY_FILE
    kept = _load_kept(cert_path, key_path)
    if kept is not None and _still_good(kept, names, now):
        return _described(kept, cert_path, key_path, reused=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _make_certificate(key, names, now)
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem_key = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write(key_path, pem_key, 0o600)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    except OSError as exc:
        raise TlsError(
            f"--state-dir {state_dir}: cannot keep the certificate there: {exc}"
        ) from None
    return _described(cert, cert_path, key_path, reused=False)


def _load_kept(cert_path: Path, key_path: Path) -> x509.Certificate | None:
    """The kept certificate if it and its key load and belong together."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if key.public_key() != cert.public_key():
        return None
    return cert


def _still_good(cert: x509.Certificate, names: MachineNames, now: datetime.datetime) -> bool:
    if cert.not_valid_after_utc - RENEW_BEFORE < now or cert.not_valid_before_utc > now:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    dns = set(san.get_values_for_type(x509.DNSName))
    ips = set(san.get_values_for_type(x509.IPAddress))
    return names.dns <= dns and names.ips <= ips


def _make_certificate(
    key: ec.EllipticCurvePrivateKey, names: MachineNames, now: datetime.datetime
) -> x509.Certificate:
    hostname = socket.gethostname() or "localhost"
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Holotrack (self-signed)"),
            x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64]),
        ]
    )
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in sorted(names.dns)]
    alt_names += [x509.IPAddress(a) for a in sorted(names.ips, key=lambda a: (a.version, a))]
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Writes `data` with `mode` from the start (never briefly readable), replacing `path`
    in one step."""
    partial = path.with_name(path.name + ".new")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(partial, path)


def _described(
    cert: x509.Certificate, cert_path: Path, key_path: Path, *, reused: bool
) -> SelfSigned:
    return SelfSigned(
        cert=cert_path,
        key=key_path,
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        not_after=cert.not_valid_after_utc,
        reused=reused,
    )


def loopback_only(host: str) -> bool:
    """Whether a server bound to `host` listens where no other machine reaches it."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def phone_origins(host: str, port: int, names: MachineNames) -> list[str]:
    """The https origins a phone may open on a server bound to `host`: one per address it
    listens on; none when it listens on loopback only."""
    if host in {"", "0.0.0.0", "::"}:
        wanted = [a for a in names.ips if not a.is_loopback and (host == "::" or a.version == 4)]
    elif loopback_only(host):
        wanted = []
    else:
        try:
            wanted = [ipaddress.ip_address(host)]
        except ValueError:
            return [f"https://{host}:{port}"]
    return [f"https://{host}:{port}" for host in _url_hosts(wanted)]


def _url_hosts(addresses: Iterable[IPAddress]) -> list[str]:
    """`addresses` as a URL names them (IPv6 in brackets), home networks first."""
    ordered = sorted(addresses, key=lambda a: (a.version, _home_rank(a), a))
    return [str(a) if a.version == 4 else f"[{a}]" for a in ordered]


# Where a home network most likely is, first: the pages' QR codes lead to the first origin
# unless the person chooses another, and a PC with Docker has 172.17.0.1 (docker0) too.
_HOME_NETWORKS = [
    ipaddress.ip_network(n) for n in ("192.168.0.0/16", "10.0.0.0/8", "172.16.0.0/12")
]


def _home_rank(address: IPAddress) -> int:
    ranks = (i for i, net in enumerate(_HOME_NETWORKS) if address in net)
    return next(ranks, len(_HOME_NETWORKS))


def certificate_origins(cert: Path, port: int) -> list[str]:
    """The https origins under the names a given certificate (--tls-cert) vouches for: its
    DNS names but wildcards and localhost, then its non-loopback addresses."""
    try:
        loaded = x509.load_pem_x509_certificate(cert.read_bytes())
        san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return []
    hosts = [
        name
        for name in san.get_values_for_type(x509.DNSName)
        if "*" not in name and name != "localhost"
    ]
    hosts += _url_hosts(
        a
        for a in san.get_values_for_type(x509.IPAddress)
        if isinstance(a, ipaddress.IPv4Address | ipaddress.IPv6Address) and not a.is_loopback
    )
    suffix = "" if port == 443 else f":{port}"
    return [f"https://{host}{suffix}" for host in hosts]
