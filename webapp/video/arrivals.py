"""Videos between the room check and their engine session (uploading, probing).

They hold no engine slot yet, so they are counted here with the sessions: a burst of
uploads gets 503 past the free slots instead of each passing the check, and at most that
many temporary files of --video-max-bytes are ever on disk. Each address's share is held
until its video ends, as a live session holds its place.
"""

from __future__ import annotations

from webapp.engine.scheduler import Scheduler
from webapp.engine.slot import service_kind
from webapp.engine.snapshot import PoolSnapshot
from webapp.errors import CapacityError
from webapp.http_errors import RETRY_AFTER_SECONDS
from webapp.per_address import PerAddress
from webapp.protocol import Track
from webapp.video.run import INVITATION_FPS


class Arrival:
    def __init__(self, arrivals: Arrivals, client: str) -> None:
        self._arrivals = arrivals
        self._client = client
        self._arriving = True
        self._held = True

    def arrived(self) -> None:
        """Once the video has its session, which the engine counts from then on; its
        address's place is kept until release(). A second call does nothing."""
        if self._arriving:
            self._arriving = False
            self._arrivals.count -= 1

    def release(self) -> None:
        """Once the video has ended, or has failed; a second call does nothing."""
        self.arrived()
        if self._held:
            self._held = False
            self._arrivals.leave(self._client)


class Arrivals:
    def __init__(self, per_client: int = 0) -> None:
        self.count = 0
        # Without this bound, one address with 40 sockets trickling their bodies held
        # every place for --upload-timeout.
        self._by_client = PerAddress(per_client)

    def admit(self, scheduler: Scheduler, client: str = "", blendshapes: bool = False) -> Arrival:
        """A place for one more video, within `client`'s share; CapacityError (503) when
        there is none. `blendshapes`: its frames cost more, as the engine times them."""
        pool = scheduler.snapshot()
        if self.fill(pool):
            raise CapacityError(
                f"server full: {pool.sessions} of {pool.max_sessions} sessions in use and "
                f"{self.count} videos arriving; try again in {RETRY_AFTER_SECONDS} s"
            )
        # Judged as the engine will admit the video once it is in (VideoRun.open), not as a
        # live 15 fps camera (pool.room): a 2 fps session on one worker had every video
        # refused before its upload as "server full: 1 of 40 sessions in use", though the
        # engine would have taken it.
        kind = service_kind(Track.HOLISTIC, blendshapes)
        refusal = scheduler.refusal(Track.HOLISTIC, INVITATION_FPS, kind)
        if refusal is not None:
            raise CapacityError(f"{refusal}; try again in {RETRY_AFTER_SECONDS} s")
        # Held until the video ends, not only while it arrives: an address whose uploads
        # each got in before its next began held every session of the server.
        if self._by_client.full(client):
            raise CapacityError(
                f"this address has {self._by_client.held(client)} videos arriving or running, "
                "the most one may (--max-sessions-per-client); try again when one ends"
            )
        self.count += 1
        self._by_client.enter(client)
        return Arrival(self, client)

    def leave(self, client: str) -> None:
        self._by_client.leave(client)

    def fill(self, pool: PoolSnapshot) -> str | None:
        """Why the videos arriving take the last free sessions, or None while they leave
        one: /readyz says full then, as POST /api/video answers 503."""
        if pool.sessions + self.count < pool.max_sessions:
            return None
        return (
            f"{pool.sessions} of {pool.max_sessions} sessions in use and {self.count} videos "
            "arriving, each to take one"
        )
