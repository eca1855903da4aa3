"""bench.predict's --users: Locust user counts, or a refusal in argparse's words."""

from __future__ import annotations

import pytest

from bench.predict import parse_args


def test_users_are_counts() -> None:
    assert parse_args([]).users == [40, 80]
    assert parse_args(["--users", "20"]).users == [20]
    assert parse_args(["--users", " 3, 5 "]).users == [3, 5]


@pytest.mark.parametrize("users", ["40,x", "0", ",", "-3"])
def test_users_that_are_not_counts_are_refused(
    users: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # "40,x" stopped with a ValueError traceback; "0" was taken as a run of no user.
    with pytest.raises(SystemExit) as exit_info:
        parse_args([f"--users={users}"])
    assert exit_info.value.code == 2
    said = f"argument --users: {users!r}: give user counts, comma-separated: 40,80"
    assert said in capsys.readouterr().err
