"""What the server and its worker processes say to each other, and how it is framed.

Every message is a frozen dataclass, pickled behind a 4-byte little-endian length. Both
ends import this module, so the framing exists once and a message's shape is checked by
mypy on both sides. A job class names the result it is answered with (`Job[R]`).
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from dataclasses import dataclass, field, fields
from typing import Any, BinaryIO, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from webapp.landmarks_json import JsonPart, json_landmarks
from webapp.protocol import Track

HEADER = struct.Struct("<I")
R = TypeVar("R", covariant=True)
# One body part, a row a point: x, y, z (and the pose's visibility) as the model gave them.
PartArray = NDArray[np.float64]


# -- results -----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Landmarks:
    """Normalised points per body part, None where the part was not found.

    pose is (33, 4), its last column the visibility; face (468, 3), or (478, 3) from a
    refined mesh, which adds the irises; each hand (21, 3).
    """

    pose: PartArray | None
    face: PartArray | None
    left_hand: PartArray | None
    right_hand: PartArray | None
    # For the rig, not sent as landmarks: the pose in metres around the hips (33, 3).
    pose_world: PartArray | None = None

    def found_anything(self) -> bool:
        return any(p is not None for p in (self.pose, self.face, self.left_hand, self.right_hand))

    def as_json(self) -> dict[str, JsonPart | None]:
        """The shape of protocol v1 and POST /predict: new lists, x, y and z rounded to 5
        decimals and visibility to 4, the face's 468 points, as the model's output has
        always been sent."""
        return json_landmarks(self.parts())

    def parts(self) -> dict[str, PartArray | None]:
        """The protocol's parts by name, the face with its irises where the mesh has them."""
        return {
            "pose": self.pose,
            "face": self.face,
            "left_hand": self.left_hand,
            "right_hand": self.right_hand,
        }

    def __eq__(self, other: object) -> bool:
        # The generated __eq__ compares tuples of fields, which asks an array of booleans
        # for one truth value and raises; equal landmarks are the same points part by part.
        if not isinstance(other, Landmarks):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))


def _same(a: PartArray | None, b: PartArray | None) -> bool:
    if a is None or b is None:
        return a is b
    return bool(np.array_equal(a, b))


@dataclass(frozen=True)
class GraphCounts:
    graphs: int  # every graph the worker holds: still, per-session and spares
    sessions: int


@dataclass(frozen=True)
class StillResult:
    width: int
    height: int
    landmarks: Landmarks
    warnings: list[dict[str, str]]
    decode_ms: float
    inference_ms: float


@dataclass(frozen=True)
class FrameResult:
    graphs: int
    width: int
    height: int
    landmarks: Landmarks
    decode_ms: float
    inference_ms: float
    # ARKit's face blendshapes (blendshapes.NAMES' order, 0..1), for a frame whose job
    # asked for them and whose face was found; inference_ms includes them.
    blendshapes: NDArray[np.float64] | None = None


# -- jobs: what the server asks ------------------------------------------------------------
class Job(Generic[R]):
    """A request to a worker, answered with an R."""


@dataclass(frozen=True)
class RunStill(Job[StillResult]):
    data: bytes
    max_pixels: int


@dataclass(frozen=True)
class RunFrame(Job[FrameResult]):
    session: str
    track: Track
    data: bytes
    capture_ms: float
    max_pixels: int
    # Added to the session's graph without waiting for it to go idle, so the next frame
    # can go in before this one is out; the worker answers each when it is through.
    overlap: bool = False
    blendshapes: bool = False


@dataclass(frozen=True)
class OpenGraph(Job[GraphCounts]):
    session: str
    track: Track


@dataclass(frozen=True)
class EndGraph(Job[GraphCounts]):
    session: str


@dataclass(frozen=True)
class CountGraphs(Job[GraphCounts]):
    pass


# -- envelopes -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    job_id: int
    job: Job[Any]


@dataclass(frozen=True)
class Done:
    job_id: int
    value: Any


@dataclass(frozen=True)
class Failed:
    job_id: int
    code: str  # a HolotrackError code; the server rebuilds the error from it
    detail: str


@dataclass(frozen=True)
class Ready:
    """The worker's first message, once its graphs are warm."""

    pid: int
    counts: GraphCounts
    connections: dict[str, list[list[int]]] = field(default_factory=dict)


Reply = Done | Failed


# -- framing -------------------------------------------------------------------------------
def encode(message: object) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def read_from(stream: BinaryIO) -> object | None:
    """The next message from a blocking stream, or None at its end."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    message: object = pickle.loads(stream.read(size))
    return message


async def read_async(stream: asyncio.StreamReader) -> object | None:
    """The next message from an asyncio stream, or None at its end."""
    try:
        head = await stream.readexactly(HEADER.size)
        (size,) = HEADER.unpack(head)
        message: object = pickle.loads(await stream.readexactly(size))
        return message
    except asyncio.IncompleteReadError:
        return None
