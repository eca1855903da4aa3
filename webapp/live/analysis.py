"""What a session does with each result beyond sending it: smoothing, the rig, reps, VMC.

The analysis itself is pure code in webapp.analysis; this is the session's handle on it,
holding its per-session state (filters, the workout) and its VMC socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from webapp.analysis import AvatarSession
from webapp.analysis.fitness import Exercise, Workout
from webapp.analysis.rig.emotion import Emotion
from webapp.engine.blendshapes import NAMES
from webapp.engine.jobs import Frame
from webapp.engine.wire import FrameResult
from webapp.live import messages
from webapp.live.audience import Audience
from webapp.live.errors import SessionClosed
from webapp.live.messages import Control
from webapp.live.options import SessionOptions
from webapp.protocol import Close
from webapp.vmc.rest_later import RestLater
from webapp.vmc.sender import Target, VmcSender

log = logging.getLogger(__name__)
NO_RIG = 'this session makes no rig to {}: ask for one with "rig": true in hello'
NO_POSE = "nobody was found in the last frame: calibrate while the camera sees you"


class SessionAnalysis:
    def __init__(
        self,
        options: SessionOptions,
        exercises: Mapping[str, Exercise],
        vmc: VmcSender | None = None,
        carried: Workout | None = None,
        audience: Audience | None = None,
    ) -> None:
        """`carried`: the workout of the camera's last session, when this one resumed it;
        `audience`: its watch link, which holds the emotion the person chose (a session that
        takes the link over holds it too)."""
        self.options = options
        self.audience = audience or Audience("-")
        self.exercises = exercises
        self.vmc = vmc
        self._avatar = AvatarSession(
            replace(options.avatar, rig=options.wants_rig), self.audience.emotion
        )
        self.workout = _workout(exercises, options.exercise, carried)
        self.aim(options.target)
        self._told: tuple[int, int, int | None] | None = None  # its progress when last told
        self._told_emotion: Emotion | None = None

    def process(
        self, frame: Frame, result: FrameResult
    ) -> tuple[dict[str, Any], dict[str, Any], float]:
        """(the result's landmarks, what else it carries, the milliseconds this took) for one
        frame; frames come in capture order."""
        started = time.perf_counter()
        found = result.landmarks
        parts = found.parts()
        shapes = result.blendshapes
        landmarks, rig = self._avatar.process(
            parts,
            frame.capture_ms,
            result.width,
            result.height,
            pose_world=found.pose_world,
            blendshapes=None if shapes is None else dict(zip(NAMES, shapes.tolist(), strict=True)),
            emotion=self.audience.emotion,
        )
        extra: dict[str, Any] = {}
        if rig is not None and self.options.avatar.rig:
            extra["rig"] = rig
        if self.workout is not None:
            # The counter was tuned and checked on the model's own points, not smoothed ones.
            # It reads them a number at a time, a third slower from an array than a list.
            pose = parts["pose"]
            rows = None if pose is None else pose.tolist()
            size = (result.width, result.height)
            extra["fitness"] = self.workout.update(rows, size, frame.capture_ms)
        if self.vmc is not None:
            if rig is not None:
                self.vmc.send(rig, frame.capture_ms / 1000.0)
            else:
                self.vmc.unseen(frame.capture_ms / 1000.0)
        return landmarks, extra, (time.perf_counter() - started) * 1000.0

    def switch(self, exercise: str | None) -> None:
        """A new set of `exercise`; a session that had none starts its workout here."""
        if exercise is None:
            return
        if self.workout is None:
            self.workout = Workout(self.exercises, exercise)
        else:
            self.workout.switch(exercise)

    def aim(self, target: int | None) -> None:
        """The current set's rep target, when there is a workout."""
        if self.workout is not None:
            self.workout.target = target

    def summary(self) -> dict[str, Any] | None:
        return None if self.workout is None else self.workout.summary()

    def calibrate(self, control: Control) -> str:
        """The answer to a calibrate message: straight ahead as it now is."""
        avatar = self._avatar
        if not avatar.options.rig:
            return messages.error("no_rig", NO_RIG.format("calibrate"), None)
        if control.clear:
            avatar.rest = None
        elif control.rest is not None:
            avatar.rest = control.rest
        elif avatar.calibrate_now() is None:
            return messages.error("no_pose", NO_POSE, None)
        return messages.calibrated(avatar.rest)

    def hold(self, emotion: Emotion) -> str:
        """The answer to an emotion message: the emotion the rig holds from the next frame,
        which the watchers hear too (a PC's page whose phone is the camera shows it)."""
        if not self._avatar.options.rig:
            return messages.error("no_rig", NO_RIG.format("hold an emotion"), None)
        self.audience.emotion = self._told_emotion = emotion
        answer = messages.emotion(emotion)
        self.audience.tell(answer)
        return answer

    def emotion_news(self) -> str | None:
        """The emotion held, when this session's client has not been told it: one its
        camera held in an earlier session of the link (a reload keeps the link, not the
        page's buttons), or one held over HTTP (emotion_view.py)."""
        held = self.audience.emotion
        if held is None or held == self._told_emotion:
            return None
        self._told_emotion = held
        return messages.emotion(held)

    def news(self) -> dict[str, Any] | None:
        """The workout, when it has begun or moved on (a rep, a set) since last asked."""
        if self.workout is None or self.workout.progress == self._told:
            return None
        self._told = self.workout.progress
        return self.workout.summary()

    def reps(self) -> int | None:
        return None if self.workout is None else self.workout.reps

    def close(self, later: RestLater | None = None) -> None:
        """`later`: the camera may come straight back (a pause, a lost connection), so its
        VMC receivers rest only if it has not within a moment; else they rest now."""
        if self.vmc is None:
            return
        if later is not None:
            later.put_down(self.options.vmc, self.vmc)
            return
        self.vmc.rest()
        self.vmc.close()


def _workout(
    exercises: Mapping[str, Exercise], name: str | None, carried: Workout | None
) -> Workout | None:
    """The session's workout: none without an exercise; the last session's going on when
    there was one (a reconnect must not take the person's count back to 0); else a new one."""
    if name is None:
        return None
    if carried is None:
        return Workout(exercises, name)
    carried.go_on(name)
    return carried


def result_text(
    analysis: SessionAnalysis | None, frame: Frame, result: FrameResult, name: str
) -> str:
    """Session `name`'s result message; analysis that fails on some odd frame costs that
    frame its extras, never the session (or the lane that delivered it)."""
    if analysis is not None:
        try:
            landmarks, extra, ms = analysis.process(frame, result)
            return messages.result(frame, result, landmarks, extra, ms)
        except Exception:
            log.exception("%s: analysis failed on frame %d; sent without it", name, frame.seq)
    return messages.result(frame, result, result.landmarks.as_json(), {}, 0.0)


async def open_vmc(targets: tuple[Target, ...]) -> VmcSender | None:
    if not targets:
        return None
    try:
        return await VmcSender.open(*targets)
    except OSError as exc:
        shown = ", ".join(map(str, targets))
        raise SessionClosed(Close.POLICY, f"cannot send VMC to {shown}: {exc}") from None


async def send_workout(
    ws: web.WebSocketResponse, summary: Mapping[str, Any] | None, send_timeout: float
) -> None:
    """The workout summary, last, on a socket the client has not closed."""
    if summary is None or ws.closed:
        return
    with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
        async with asyncio.timeout(send_timeout):
            await ws.send_str(messages.workout(summary))
