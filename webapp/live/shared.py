"""What every live session of one server shares beyond the engine: watch tokens, the
exercises it knows, the VMC receivers its operator allows and those about to rest, and
the pairing codes that hand a link to another device."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from webapp.analysis.fitness import Exercise, load_exercises
from webapp.config import Config
from webapp.live.avatars import MB, LinkAvatars, client_share
from webapp.live.logbook import Refusals
from webapp.live.pairing import PairingCodes
from webapp.live.watch_tokens import WatchTokens
from webapp.vmc.rest_later import RestLater
from webapp.vmc.sender import Target, parse_allow


@dataclass(frozen=True)
class LiveShared:
    vmc_allow: frozenset[Target] = frozenset()
    exercises: Mapping[str, Exercise] = field(default_factory=load_exercises)
    tokens: WatchTokens = field(default_factory=WatchTokens)
    # VMC receivers of sessions that may come straight back, resting in a moment.
    vmc_rest: RestLater = field(default_factory=RestLater)
    # Codes typed on another device to hand it a page's link key.
    pairing: PairingCodes = field(default_factory=PairingCodes)
    # End lines of connections refused before they began, counted rather than each said.
    refusals: Refusals = field(default_factory=Refusals)

    @classmethod
    def from_config(cls, config: Config) -> LiveShared:
        budget = config.avatar_memory_mb * MB
        share = client_share(budget, config.max_avatar_mb * MB)
        tokens = WatchTokens(config.watch_grace, LinkAvatars(budget, share))
        return cls(vmc_allow=parse_allow(config.vmc_allow), tokens=tokens)
