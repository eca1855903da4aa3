"""Who watches a session: each watcher's outbox, and the audience a camera session feeds
and, when it ends, closes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from webapp.analysis.rig.emotion import Emotion
from webapp.engine.jobs import Frame
from webapp.live import messages
from webapp.live.errors import SessionClosed
from webapp.live.outbox import Outbox
from webapp.protocol import Close

# Ends a session (a camera's or a watcher's) from outside, with its close code and reason.
Ender = Callable[[SessionClosed], None]


class Watcher:
    """One watcher's outbox; `end` closes its connection with a reason."""

    def __init__(self, outbox: Outbox, end: Ender) -> None:
        self.outbox = outbox
        self.end = end


@dataclass
class Audience:
    """The watchers of one session: what the session feeds and, when it ends, closes."""

    session: str
    watchers: set[Watcher] = field(default_factory=set)
    # The name of the access key the session was opened with; its watchers count against it.
    key: str | None = None
    # The session's last workout message, for a watcher who joins after it (a coach's card).
    workout: str | None = None
    # Where the avatar its camera gave the link is, while it has one (LinkAvatars).
    avatar: str | None = None
    # The emotion its camera holds (None: never one), kept for the camera's next session.
    emotion: Emotion | None = None
    # A message for the camera's live session, while one is (its control outbox).
    camera: Callable[[str], None] | None = None
    # What its camera is to hear when it comes back: it was told while between connections.
    owed: str | None = None

    def attach(self, camera: Callable[[str], None]) -> None:
        """The camera's live session, which hears now what it missed while away."""
        self.camera = camera
        if self.owed is not None:
            camera(self.owed)
            self.owed = None

    def detach(self, camera: Callable[[str], None]) -> None:
        """`camera`'s session lets go: what comes for the camera from now on is owed to its
        next session. A newer session already attached stays."""
        if self.camera == camera:
            self.camera = None

    def tell_camera(self, text: str) -> None:
        """A message for the camera (a code was used): a page reconnecting after its phone
        slept still takes the used code off its screen."""
        if self.camera is None:
            self.owed = text
        else:
            self.camera(text)

    def put(self, frame: Frame, text: str) -> None:
        for watcher in self.watchers:
            watcher.outbox.put_result(frame, text)

    def put_workout(self, text: str) -> None:
        self.workout = text
        self.tell(text)

    def tell(self, text: str) -> None:
        """A message for the watchers, besides the results (the workout, the emotion)."""
        for watcher in self.watchers:
            watcher.outbox.put_control(text)

    def moved_to(self, session: str) -> None:
        """The camera's next session took these watchers over: they hear its id again."""
        self.session = session
        for watcher in self.watchers:
            watcher.outbox.put_control(messages.watching(session, self.avatar))

    def show_avatar(self, url: str | None) -> None:
        self.avatar = url
        for watcher in self.watchers:
            watcher.outbox.put_control(messages.avatar(url))

    def end_all(self, why: str) -> None:
        for watcher in list(self.watchers):
            watcher.end(SessionClosed(Close.NORMAL, f"the watched session ended: {why}"))
