"""python -m swarm.echo as an operator starts it: a port it cannot take is one line."""

from __future__ import annotations

import socket

import pytest

from swarm import echo


def test_a_port_in_use_is_one_line_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            echo.main(["--port", str(port)])
    assert exit_info.value.code == 2
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said.startswith(f"python -m swarm.echo: error: cannot listen on 127.0.0.1:{port}: ")
    assert "in use" in said


@pytest.mark.parametrize("port", ["0", "99999", "-1"])
def test_a_port_out_of_range_is_refused(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        echo.main(["--port", port])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "python -m swarm.echo: error: --port must be 1 to 65535"
    )
