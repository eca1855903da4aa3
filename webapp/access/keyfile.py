"""The keys file: one JSON object a line, each a key with its name and limits.

    {"name": "studio-a", "key": "<secret>", "max_sessions": 2, "predict_per_minute": 60,
     "video_seconds_per_hour": 600}

A missing (or null) limit means unlimited; fields this version does not know are allowed,
so a newer file still loads. Blank lines and lines starting with # are skipped. Any other
problem names its line, and the whole file is refused: a half-read file would lock out or
let in the wrong people.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A key shorter than this is guessable; the README shows how to make a good one.
MIN_KEY_CHARS = 16
MAX_KEY_CHARS = 512
# Names appear in logs and as metric labels: short, plain, no quotes or spaces.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# What an HTTP header and a URL query carry without escaping: visible ASCII, no space.
KEY_CHARS = re.compile(r"[\x21-\x7e]+")
LIMITS = ("max_sessions", "predict_per_minute", "video_seconds_per_hour")
LINE_BREAK = re.compile(r"\r\n|\r|\n")


class KeysFileError(ValueError):
    """The keys file cannot be used; the message names the file and the line."""


def digest(key: str) -> bytes:
    """SHA-256 of a key: what the server keeps instead of the key itself. surrogatepass, so
    any str a client can send (JSON may carry lone surrogates) hashes instead of raising."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class Limits:
    """None: unlimited."""

    max_sessions: int | None = None
    predict_per_minute: int | None = None
    video_seconds_per_hour: float | None = None


@dataclass(frozen=True)
class KeyEntry:
    name: str
    digest: bytes
    limits: Limits


def read_keys(path: Path) -> tuple[KeyEntry, ...]:
    try:
        # utf-8-sig: an editor on Windows may begin the file with a byte-order mark.
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeysFileError(f"cannot read {path}: {exc}") from None
    # Files joined (cat a.jsonl b.jsonl, b saved by Notepad) have a mark at a later line's
    # start too: that line was "not a JSON object", which it looked to be.
    return parse_keys(text.replace("\n\ufeff", "\n"), str(path))


def parse_keys(text: str, source: str) -> tuple[KeyEntry, ...]:
    entries: list[KeyEntry] = []
    names: set[str] = set()
    digests: set[bytes] = set()
    # Lines as an editor counts them: splitlines() broke a line at U+2028, U+0085 and the
    # like, which a JSON string (an operator's own "note") holds as plain characters, and
    # refused the file at a line number no editor showed.
    for number, line in enumerate(LINE_BREAK.split(text), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            entry = _entry(stripped)
        except ValueError as exc:
            raise KeysFileError(f"{source} line {number}: {exc}") from None
        if entry.name in names:
            raise KeysFileError(f"{source} line {number}: the name {entry.name!r} is used twice")
        if entry.digest in digests:
            # Never say which line holds the same secret: the message may reach a log.
            raise KeysFileError(f"{source} line {number}: this key is also given to another name")
        names.add(entry.name)
        digests.add(entry.digest)
        entries.append(entry)
    if not entries:
        raise KeysFileError(f"{source} holds no keys: nobody could use the server")
    return tuple(entries)


class _Members(dict[str, Any]):
    """A JSON object that remembers the first member it was given twice."""

    repeated: str | None = None


def _members(pairs: list[tuple[str, Any]]) -> _Members:
    members = _Members()
    for field, value in pairs:
        if field in members and members.repeated is None:
            members.repeated = field
        members[field] = value
    return members


def _entry(line: str) -> KeyEntry:
    try:
        record = json.loads(line, object_pairs_hook=_members)
    except (ValueError, RecursionError):
        raise ValueError("not a JSON object") from None
    if not isinstance(record, dict):
        raise ValueError('each line must be a JSON object: {"name": ..., "key": ...}')
    if isinstance(record, _Members) and record.repeated is not None:
        # JSON keeps the last of the two: a limit then null was unlimited without a word.
        # Only the line's own fields: an unknown field's inner object is not ours to judge.
        # A field name of the operator's own is never quoted: it may be a pasted key.
        known = record.repeated in ("name", "key", *LIMITS)
        field = f"the field {record.repeated!r}" if known else "a field"
        raise ValueError(f"{field} is given twice")
    name = record.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(
            "name must be 1 to 64 letters, digits or . _ @ - (it appears in logs and metrics)"
        )
    key = record.get("key")
    if not isinstance(key, str) or not KEY_CHARS.fullmatch(key):
        raise ValueError(f"{name}: key must be a string of visible ASCII characters, no spaces")
    if not MIN_KEY_CHARS <= len(key) <= MAX_KEY_CHARS:
        raise ValueError(
            f"{name}: key must be {MIN_KEY_CHARS} to {MAX_KEY_CHARS} characters; make one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(24))'"
        )
    return KeyEntry(
        name=name,
        digest=digest(key),
        limits=Limits(
            max_sessions=_limit(record, name, "max_sessions", int),
            predict_per_minute=_limit(record, name, "predict_per_minute", int),
            video_seconds_per_hour=_seconds(_limit(record, name, "video_seconds_per_hour", float)),
        ),
    )


def _limit(record: dict[str, Any], name: str, field: str, kind: type) -> Any:
    value = record.get(field)
    if value is None:
        return None
    allowed = (int, float) if kind is float else (int,)
    if isinstance(value, bool) or not isinstance(value, allowed) or not value >= 0:
        whole = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name}: {field} must be {whole}, 0 or more (or left out: unlimited)")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # a whole number past what a float holds
        finite = False
    if not finite:
        raise ValueError(f"{name}: {field} must be finite (leave it out for unlimited)")
    return value


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)
