"""What a malformed request's words keep once request_secrets has cut its secrets out, in
the words aiohttp's parser quotes them (tests/test_lifecycle.py has the real server's)."""

from __future__ import annotations

import pytest

from webapp.request_secrets import without_secrets

SECRET = "SECRET-ACCESS-KEY-1234567890"


@pytest.mark.parametrize(
    "said",
    [
        # The server reads an escaped letter as the letter: ?%6Bey= is ?key=.
        f"Invalid char in url query: b'GET /ws?%6Bey={SECRET}&x=caf\\xc3\\xa9 y HTTP/1.1' ^",
        f"Invalid char in url query: b'GET /ws?watcher=1&%6c%69nk={SECRET}&x=\\x01 HTTP/1.1' ^",
        f"Invalid char in url: b'GET /api/%65motion/{SECRET}\\x01 HTTP/1.1' ^",
        # A folded header: aiohttp quotes the continuation line alone, without its name.
        f"Invalid header value char: b' Bearer {SECRET}\\x7f' ^",
        f"Unexpected whitespace after header value: b'\\t{SECRET}\\x01' ^",
        f'Invalid header value char: b" it\'s {SECRET}\\x7f" ^',
    ],
)
def test_escaped_names_and_folded_lines_lose_their_secrets(said: str) -> None:
    cut = without_secrets(said)
    assert SECRET not in cut, cut
    assert SECRET[8:] not in cut, cut
    # What was malformed is still said.
    assert cut.split(":")[0] == said.split(":")[0]


def test_what_is_no_secret_stays() -> None:
    said = "Invalid char in url query: b'GET /predict?%6Eame=caf%C3%A9&k=1 HTTP/1.1' ^"
    assert without_secrets(said) == (
        "Invalid char in url query: b'GET /predict?name=caf%C3%A9&k=1 HTTP/1.1' ^"
    )
    header = "Invalid header value char: b'X-Note: hello\\x01' ^"
    assert without_secrets(header) == header
