"""Avatars that cameras gave their watch links (PUT /api/avatar/{token}), so an OBS view
shows the streamer's own .vrm: in memory only, one per link, for as long as the link lives,
and all of them within one budget for the whole server."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

MB = 1024 * 1024
# What a binary glTF (and so a .vrm) opens with.
GLB_MAGIC = b"glTF"


class AvatarMemoryFull(Exception):
    """The budget cannot hold one more avatar of this size now."""

    def __init__(self, free: int) -> None:
        super().__init__(free)
        self.free = free


class UploadUnderWay(Exception):
    """The link's camera is already uploading an avatar: one at a time per link."""


@dataclass(frozen=True)
class LinkAvatar:
    data: bytes
    # Each stored avatar has its own: a watcher tells a replacement from the one it shows.
    version: int


class LinkAvatars:
    """Token -> its avatar. Bytes still arriving are reserved against the budget before
    they are read, so uploads at once cannot take the server past it between them."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._kept: dict[str, LinkAvatar] = {}
        self._arriving: dict[str, int] = {}  # token -> bytes reserved for its upload
        self._held = 0
        self._reserved = 0
        self._versions = itertools.count(1)

    def held(self) -> int:
        """Bytes of the avatars kept, those still arriving left out."""
        return self._held

    def get(self, token: str) -> LinkAvatar | None:
        return self._kept.get(token)

    def reserve(self, token: str, size: int) -> None:
        """Room for an upload of at most `size` bytes to `token`. The avatar it replaces
        counts as free: a streamer swapping one avatar for another does not need both."""
        if token in self._arriving:
            raise UploadUnderWay
        old = self._kept.get(token)
        free = self.budget - self._held - self._reserved + (len(old.data) if old else 0)
        if size > free:
            raise AvatarMemoryFull(max(0, free))
        self._arriving[token] = size
        self._reserved += size

    def cancel(self, token: str) -> None:
        """The upload to `token` failed or was refused: its reservation is given back."""
        self._reserved -= self._arriving.pop(token, 0)

    def keep(self, token: str, data: bytes) -> LinkAvatar:
        """The upload reserved for `token` arrived: it replaces the link's last avatar."""
        self.cancel(token)
        self.drop(token)
        avatar = LinkAvatar(data, next(self._versions))
        self._kept[token] = avatar
        self._held += len(data)
        return avatar

    def drop(self, token: str) -> bool:
        """Forgets `token`'s avatar; whether it had one."""
        old = self._kept.pop(token, None)
        if old is None:
            return False
        self._held -= len(old.data)
        return True

    def clear(self) -> None:
        self._kept.clear()
        self._held = 0


# The path GET serves a link's avatar at (webapp/avatar_link.py); the query changes with
# each upload, so a watcher sees a replacement as a new address.
LINK_AVATAR_PATH = "/avatar/link/{token}.vrm"


def avatar_url(token: str, version: int) -> str:
    return LINK_AVATAR_PATH.format(token=token) + f"?v={version}"
