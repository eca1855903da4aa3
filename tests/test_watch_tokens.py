"""Watch tokens on their own: who holds one, how long it rests, and how many may rest."""

from __future__ import annotations

import json
from typing import cast

import pytest

from webapp.analysis.fitness import Workout, load_exercises
from webapp.live import watch_tokens
from webapp.live.audience import Audience, Watcher
from webapp.live.errors import SessionClosed
from webapp.live.outbox import Outbox
from webapp.live.watch_tokens import WatchTokens

EXERCISES = load_exercises()


class Messages:
    """What a watcher's outbox was given to send, besides results."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def put_control(self, text: str) -> None:
        self.sent.append(text)


def audience_with_a_watcher(name: str) -> tuple[Audience, list[SessionClosed], Messages]:
    told: list[SessionClosed] = []
    messages = Messages()
    audience = Audience(name)
    audience.watchers.add(Watcher(cast(Outbox, messages), told.append))
    return audience, told, messages


async def test_a_session_resumed_elsewhere_no_longer_holds_its_token() -> None:
    tokens = WatchTokens(grace=60.0)
    audience, told, messages = audience_with_a_watcher("s1")
    first_ended: list[SessionClosed] = []
    grant = tokens.issue(audience, first_ended.append)
    second_ended: list[SessionClosed] = []
    resumed = tokens.resume(grant.resume, "s2", None, second_ended.append)
    assert resumed is not None
    assert (resumed.token, resumed.audience) == (grant.token, audience)
    assert [c.reason for c in first_ended] == ["another connection took its link over as s2"]
    assert [json.loads(m) for m in messages.sent] == [{"type": "watching", "session": "s2"}]
    assert audience.session == "s2"
    # What the first session does with the token as it ends changes nothing.
    tokens.revoke(grant.token, first_ended.append, "the client closed the session")
    tokens.rest(grant.token, first_ended.append, "the connection was lost")
    assert tokens.find(grant.token) is audience
    assert told == []
    tokens.revoke(grant.token, second_ended.append, "the client closed the session")
    assert tokens.find(grant.token) is None
    assert [c.reason for c in told] == ["the watched session ended: the client closed the session"]


async def test_the_next_session_takes_over_what_the_last_one_hands_on() -> None:
    """Asked when it resumes, not when the last session ended: a session that has not yet
    noticed its connection is dead is still counting."""
    tokens = WatchTokens(grace=60.0)
    workouts = [Workout(EXERCISES, "squat"), Workout(EXERCISES, "lunge")]
    handed: list[Workout | None] = [None]
    grant = tokens.issue(Audience("s1"), lambda close: None, lambda: handed[0])
    assert grant.workout is None
    handed[0] = workouts[0]
    second = tokens.resume(grant.resume, "s2", None, lambda close: None, lambda: workouts[1])
    assert second is not None
    assert second.workout is workouts[0]
    third = tokens.resume(second.resume, "s3", None, lambda close: None)
    assert third is not None
    assert third.workout is workouts[1]


async def test_another_access_key_cannot_resume() -> None:
    tokens = WatchTokens(grace=60.0)
    grant = tokens.issue(Audience("s1", key="alice"), lambda close: None)
    tokens.rest(grant.token, lambda close: None, "the connection was lost")
    assert tokens.resume(grant.resume, "s2", "bob", lambda close: None) is None
    assert tokens.resume(grant.resume, "s2", None, lambda close: None) is None
    assert tokens.resume(grant.resume, "s2", "alice", lambda close: None) is not None


async def test_a_link_key_names_the_same_token_on_every_server_and_only_its_camera() -> None:
    """Two WatchTokens are two servers, or one before and after a restart."""
    key, other = "k" * 22, "K" * 22
    here, there = WatchTokens(grace=60.0), WatchTokens(grace=60.0)
    first = here.claim(key, "s1", None, lambda close: None)
    assert not first.taken_over
    assert there.claim(key, "t1", None, lambda close: None).token == first.token
    assert here.claim(other, "s2", None, lambda close: None).token != first.token
    assert key not in first.token
    # A watcher knows the token: as a key it names another link, not this one.
    assert here.claim(first.token + "-", "s3", None, lambda close: None).token != first.token
    assert here.find(first.token) is first.audience


async def test_a_link_key_takes_its_link_over_from_a_live_or_resting_session() -> None:
    tokens = WatchTokens(grace=60.0)
    key = "k" * 30
    first_ended: list[SessionClosed] = []
    first = tokens.claim(key, "s1", "alice", first_ended.append)
    audience = first.audience
    told: list[SessionClosed] = []
    messages = Messages()
    audience.watchers.add(Watcher(cast(Outbox, messages), told.append))
    second_ended: list[SessionClosed] = []
    second = tokens.claim(key, "s2", "alice", second_ended.append)
    assert (second.token, second.audience, second.taken_over) == (first.token, audience, True)
    assert second.resume != first.resume
    assert [c.reason for c in first_ended] == ["another connection took its link over as s2"]
    assert [json.loads(m) for m in messages.sent] == [{"type": "watching", "session": "s2"}]
    # The old resume string names nothing now; the new one works.
    assert tokens.resume(first.resume, "x", "alice", lambda close: None) is None
    tokens.rest(second.token, second_ended.append, "its camera paused")
    third = tokens.claim(key, "s3", "alice", lambda close: None)
    assert (third.token, third.taken_over) == (first.token, True)
    assert second_ended == []
    assert told == []
    with pytest.raises(SessionClosed) as refused:
        tokens.claim(key, "s4", "bob", lambda close: None)
    assert refused.value.code == 1008
    assert "another access key" in refused.value.reason


@pytest.mark.parametrize("token", [[], {}, ["x"], {"t": 1}, 12, None, True, 1.5])
async def test_a_token_of_any_json_type_names_nothing(token: object) -> None:
    """A watch message's token is whatever JSON the client sent: a list or an object is
    unhashable, and looked up as it came would end the watcher as a server failure (1011),
    not tell it the link names no session (4003)."""
    tokens = WatchTokens(grace=60.0)
    tokens.issue(Audience("s1"), lambda close: None)
    assert tokens.find(token) is None


async def test_the_oldest_resting_audience_gives_up_past_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watch_tokens, "MAX_RESTING", 2)
    tokens = WatchTokens(grace=60.0)
    held = []
    for name in ("s1", "s2", "s3"):
        audience, told, _ = audience_with_a_watcher(name)

        def owner(close: SessionClosed) -> None:
            raise AssertionError("a resting session is not ended again")

        grant = tokens.issue(audience, owner)
        held.append((grant, told))
        tokens.rest(grant.token, owner, "the connection was lost")
    (first, first_told), *others = held
    assert tokens.find(first.token) is None
    assert [c.reason for c in first_told] == [
        "the watched session ended: its camera was not back before too many others waited "
        "(the connection was lost)"
    ]
    for grant, told in others:
        assert tokens.find(grant.token) is grant.audience
        assert told == []
    assert len(tokens) == 2
    tokens.close()
    assert len(tokens) == 0
    assert all(len(told) == 1 for _, told in others)


async def test_one_client_address_gives_up_its_own_oldest_not_everyones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A security review paused one camera with an OBS watcher, then from one address
    opened and dropped 1032 sessions in 6 s: the victim's link was the oldest past the
    server's bound, and its view was told the camera did not come back."""
    monkeypatch.setattr(watch_tokens, "RESTING_PER_CLIENT", 2)
    monkeypatch.setattr(watch_tokens, "MAX_RESTING", 5)
    tokens = WatchTokens(grace=60.0)

    def rested(name: str, client: str) -> tuple[str, list[SessionClosed]]:
        audience, told, _ = audience_with_a_watcher(name)

        def owner(close: SessionClosed) -> None:
            raise AssertionError("a resting session is not ended again")

        grant = tokens.issue(audience, owner)
        tokens.rest(grant.token, owner, "the connection was lost", client)
        return grant.token, told

    victim, victim_told = rested("victim", "192.0.2.7")
    flood = [rested(f"flood{n}", "203.0.113.9") for n in range(6)]
    assert tokens.find(victim) is not None
    assert victim_told == []
    # The flooding address keeps its own two newest; its older ones gave up.
    kept = [token for token, _ in flood if tokens.find(token) is not None]
    assert kept == [token for token, _ in flood[-2:]]
    # At the server's bound, the client holding the most gives up its oldest: many
    # addresses with a few each (a review's 64 x 16) no longer end the victim's.
    others = [rested(f"other{n}", f"198.51.100.{n}") for n in range(3)]
    assert tokens.find(victim) is not None
    assert [tokens.find(token) is not None for token, _ in flood[-2:]] == [False, True]
    assert all(tokens.find(token) is not None for token, _ in others)
    # An IPv6 home is its /56: its /64s share one allowance.
    tokens.close()
    home = [rested(f"home{n}", f"2001:db8:9:{n:x}::/64") for n in range(3)]
    assert [tokens.find(token) is not None for token, _ in home] == [False, True, True]


async def test_only_a_live_session_of_the_same_key_is_taken_over() -> None:
    """A hello that takes over a session still connected is let in one over the limits,
    as that one ends as it starts; a resting link's session has ended already and left
    its place, so its camera coming back is admitted like any other session."""
    tokens = WatchTokens(grace=60.0)
    link_key = "k" * 30

    def owner(close: SessionClosed) -> None:
        pass

    grant = tokens.claim(link_key, "s1", "alice", owner)
    assert tokens.takes_over(link_key, None, "alice")
    assert tokens.takes_over(None, grant.resume, "alice")
    assert not tokens.takes_over(link_key, None, "bob")
    assert not tokens.takes_over(None, grant.resume, None)
    assert not tokens.takes_over("K" * 30, None, "alice")
    assert not tokens.takes_over(None, None, "alice")
    tokens.rest(grant.token, owner, "the connection was lost")
    assert not tokens.takes_over(link_key, None, "alice")
    assert not tokens.takes_over(None, grant.resume, "alice")
