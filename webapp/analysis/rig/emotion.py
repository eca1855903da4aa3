"""A held emotion: one of VRM's five emotion presets, chosen by the person rather than read
from the face, carried in the rig until changed.

The face mesh tells a blink or an open mouth well, a smile or a frown badly; streamers
hold an emotion on purpose (VSeeFace's hotkeys, VTube Studio's expressions), for a laugh
or a scene. The chosen one fades in and the last one out, so neither VMC receivers (which
show a value the moment it arrives) nor the avatar page snap the face.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# VRM 1.0's emotion presets, in the order its specification lists them.
EMOTIONS = ("happy", "angry", "sad", "relaxed", "surprised")
# A quarter of a second from none to whole: about as long as a change of expression takes,
# and four frames at 15 fps, so the fade shows on the slowest session too.
FADE_MS = 250.0


@dataclass(frozen=True)
class Emotion:
    """`name` held at `weight` (0..1]; name None: none held (the face's own expressions)."""

    name: str | None
    weight: float = 1.0

    @classmethod
    def from_json(cls, message: Mapping[str, object]) -> Emotion:
        """From {"name": <one of EMOTIONS or null>, "weight": <0..1, optional>}; raises
        ValueError saying what is wrong. A weight given as null is as if left out, as
        every other optional field of the protocol (docs/protocol.md)."""
        name = message.get("name", "missing")
        if name is not None and (not isinstance(name, str) or name not in EMOTIONS):
            raise ValueError(
                f"an emotion's name must be one of {', '.join(EMOTIONS)}, or null for none"
            )
        weight = message.get("weight")
        if weight is None:
            weight = 1.0
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not 0.0 < weight <= 1.0  # NaN and huge integers fail this too
        ):
            raise ValueError("an emotion's weight must be a number above 0, at most 1")
        return cls(name, float(weight) if name is not None else 1.0)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "weight": self.weight if self.name is not None else 0.0}


class EmotionFader:
    """One session's emotion presets, each moving toward the held emotion's weight (or 0)
    by at most a whole over FADE_MS of capture time.

    Until an emotion is first held it gives nothing, so a VMC receiver's own hotkeys keep
    working for whoever never touches these; once one has been held it gives all five on
    every frame, so letting go sends each back to 0 rather than leaving it where it was."""

    def __init__(self, held: Emotion | None = None) -> None:
        """`held`: the emotion already held when the session starts (its camera's last
        session held it), there from the first frame rather than faded in again."""
        self._values: dict[str, float] | None = None
        self._at_ms: float | None = None
        if held is not None:
            self._values = {k: held.weight if k == held.name else 0.0 for k in EMOTIONS}

    def __call__(self, held: Emotion | None, capture_ms: float) -> dict[str, float] | None:
        if self._values is None:
            if held is None:
                return None
            self._values = dict.fromkeys(EMOTIONS, 0.0)
        # Frames come in capture order; a client's clock that runs back only holds the fade.
        since = 0.0 if self._at_ms is None else capture_ms - self._at_ms
        step = max(0.0, since) / FADE_MS
        self._at_ms = capture_ms
        for name, value in self._values.items():
            target = held.weight if held is not None and held.name == name else 0.0
            if value < target:
                self._values[name] = min(value + step, target)
            else:
                self._values[name] = max(value - step, target)
        return dict(self._values)
