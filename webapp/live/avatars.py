"""Avatars that cameras gave their watch links (PUT /api/avatar/{token}), so an OBS view
shows the streamer's own .vrm: in memory only, one per link, for as long as the link lives,
and all of them within one budget for the whole server."""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass

MB = 1024 * 1024
# What a binary glTF (and so a .vrm) opens with.
GLB_MAGIC = b"glTF"


class NoRoom(Exception):
    """An upload of this size does not fit now; `free` bytes would."""

    def __init__(self, free: int) -> None:
        super().__init__(free)
        self.free = free


class AvatarMemoryFull(NoRoom):
    """The budget cannot hold one more avatar of this size now."""


class ClientShareFull(NoRoom):
    """One client address already holds (or is uploading) its share of the budget."""


class UploadUnderWay(Exception):
    """The link's camera is already uploading an avatar: one at a time per link."""


@dataclass(frozen=True)
class LinkAvatar:
    data: bytes
    # Each stored avatar has its own: a watcher tells a replacement from the one it shows.
    version: int


def client_share(budget: int, largest: int) -> int:
    """What one client address may hold of `budget`: a quarter, so one client's sessions
    uploading slowly leave three quarters to everyone else, and never less than one
    avatar of the largest size allowed."""
    return max(budget // 4, min(largest, budget))


class LinkAvatars:
    """Token -> its avatar. Bytes still arriving are reserved against the budget before
    they are read, so uploads at once cannot take the server past it between them; and
    against the share of the client address sending them, so one client's sessions cannot
    take it all."""

    def __init__(self, budget: int, share: int | None = None) -> None:
        self.budget = budget
        self.share = budget if share is None else share
        self._kept: dict[str, tuple[str, LinkAvatar]] = {}  # token -> (client, avatar)
        self._arriving: dict[str, tuple[str, int]] = {}  # token -> (client, bytes reserved)
        self._held = 0
        self._reserved = 0
        self._used: collections.Counter[str] = collections.Counter()  # client -> bytes
        self._versions = itertools.count(1)

    def held(self) -> int:
        """Bytes of the avatars kept, those still arriving left out."""
        return self._held

    def used_by(self, client: str) -> int:
        """Bytes `client` holds and is uploading."""
        return self._used[client]

    def get(self, token: str) -> LinkAvatar | None:
        kept = self._kept.get(token)
        return None if kept is None else kept[1]

    def reserve(self, token: str, size: int, client: str) -> None:
        """Room for an upload of at most `size` bytes to `token` from `client`. The avatar
        it replaces counts as free: a streamer swapping one avatar for another does not
        need both."""
        if token in self._arriving:
            raise UploadUnderWay
        owner, old = self._kept.get(token, (None, None))
        replaced = 0 if old is None else len(old.data)
        free = self.budget - self._held - self._reserved + replaced
        if size > free:
            raise AvatarMemoryFull(max(0, free))
        mine = self._used[client] - (replaced if owner == client else 0)
        if mine + size > self.share:
            raise ClientShareFull(max(0, self.share - mine))
        self._arriving[token] = (client, size)
        self._reserved += size
        self._count(client, size)

    def cancel(self, token: str) -> None:
        """The upload to `token` failed or was refused: its reservation is given back."""
        arriving = self._arriving.pop(token, None)
        if arriving is not None:
            client, size = arriving
            self._reserved -= size
            self._count(client, -size)

    def keep(self, token: str, data: bytes) -> LinkAvatar:
        """The upload reserved for `token` arrived: it replaces the link's last avatar."""
        client, _ = self._arriving[token]
        self.cancel(token)
        self.drop(token)
        avatar = LinkAvatar(data, next(self._versions))
        self._kept[token] = (client, avatar)
        self._held += len(data)
        self._count(client, len(data))
        return avatar

    def drop(self, token: str) -> bool:
        """Forgets `token`'s avatar; whether it had one."""
        kept = self._kept.pop(token, None)
        if kept is None:
            return False
        client, old = kept
        self._held -= len(old.data)
        self._count(client, -len(old.data))
        return True

    def _count(self, client: str, size: int) -> None:
        self._used[client] += size
        if self._used[client] <= 0:
            del self._used[client]


# The path GET serves a link's avatar at (webapp/avatar_link.py); the query changes with
# each upload, so a watcher sees a replacement as a new address.
LINK_AVATAR_PATH = "/avatar/link/{token}.vrm"


def avatar_url(token: str, version: int) -> str:
    return LINK_AVATAR_PATH.format(token=token) + f"?v={version}"
