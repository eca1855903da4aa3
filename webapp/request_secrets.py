"""What a request a client got wrong may carry that is worth a session or a key, cut out
before its words reach the log: aiohttp quotes a malformed request's line and headers.
The paths and headers are the routes' own names, so a renamed route stays covered."""

from __future__ import annotations

import re

from webapp.avatar_link import UPLOAD_PATH
from webapp.camera_proof import LINK_KEY_HEADER, PROOF_HEADER
from webapp.emotion_view import EMOTION_PATH
from webapp.live.avatars import LINK_AVATAR_PATH
from webapp.pairing_view import OFFER_PATH, WATCH_TOKEN_HEADER

# The query's access key and watch or link token, as deploy/nginx cuts them from its
# access log. A value runs on past a backslash: aiohttp quotes the line as bytes, and the
# stray byte that made it malformed (\x01) may sit inside the secret.
_SECRET_QUERY = re.compile(r"(?i)([?&;](?:key|watch|link)=)[^&;\s'\"]*")
_TOKEN_PATHS = (OFFER_PATH, UPLOAD_PATH, EMOTION_PATH, LINK_AVATAR_PATH)
_SECRET_PATH = re.compile(
    "(" + "|".join(re.escape(path.split("{")[0]) for path in _TOKEN_PATHS) + r")[^/?\s'\"]+"
)
_SECRET_HEADERS = ("Authorization", LINK_KEY_HEADER, WATCH_TOKEN_HEADER, PROOF_HEADER)
# Whitespace before the colon is what makes such a header malformed ("Invalid header token").
_SECRET_HEADER = re.compile(
    r"(?i)\b(" + "|".join(re.escape(name) for name in _SECRET_HEADERS) + r")\s*:.*"
)
# aiohttp quotes only the line it stopped on: a continuation line (obs-fold, RFC 9112 5.2)
# carries the rest of a header whose name is on the line before, an Authorization's
# credentials as likely as anything, so the whole quoted line goes.
_FOLDED_LINE = re.compile(r"""b(['"])(?: |\\t)(?:\\.|(?!\1).)*\1""")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _unescaped(match: re.Match[str]) -> str:
    char = chr(int(match[1], 16))
    return char if char in _UNRESERVED else match[0]


def without_secrets(text: str) -> str:
    """`text`, a request's words as a client sent them, with every secret cut out: a line
    a client got wrong would otherwise name its access key or its link."""
    # The escape of a letter or digit is that letter (RFC 3986 6.2.2.2): the server reads
    # ?%6Bey= as ?key= and /api/%65motion/ as /api/emotion/, so the cuts must too.
    text = _ESCAPE.sub(_unescaped, text)
    text = _FOLDED_LINE.sub(r"b\1 -\1", text)
    text = _SECRET_QUERY.sub(r"\1-", text)
    text = _SECRET_PATH.sub(r"\1-", text)
    return _SECRET_HEADER.sub(r"\1: -", text)
