"""A held emotion (webapp/analysis/rig/emotion.py): read from a message, faded in and out,
and carried in the rig of the real model's landmarks."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.landmarks import gesture
from webapp.analysis import AvatarOptions, AvatarSession
from webapp.analysis.rig import EXPRESSIONS
from webapp.analysis.rig.emotion import EMOTIONS, FADE_MS, Emotion, EmotionFader
from webapp.vmc.encode import VRM0_EXPRESSION, frame_messages

HAPPY = Emotion("happy")
NONE = Emotion(None)


def test_the_five_are_vrms_emotion_presets_and_none_reads_the_face() -> None:
    assert set(EMOTIONS) == {"happy", "angry", "sad", "relaxed", "surprised"}
    assert not set(EMOTIONS) & set(EXPRESSIONS)  # the face's own are never held
    assert Emotion.from_json({"name": "sad"}) == Emotion("sad", 1.0)
    assert Emotion.from_json({"name": "angry", "weight": 0.4}) == Emotion("angry", 0.4)
    assert Emotion.from_json({"name": "relaxed", "weight": 1}) == Emotion("relaxed", 1.0)
    assert Emotion.from_json({"name": None}) == NONE
    assert Emotion.from_json({"name": None, "weight": 0.3}) == NONE  # none is none
    assert NONE.to_json() == {"name": None, "weight": 0.0}
    assert Emotion("surprised", 0.5).to_json() == {"name": "surprised", "weight": 0.5}


def test_a_null_weight_is_the_default_weight_as_any_null_field() -> None:
    assert Emotion.from_json({"name": "happy", "weight": None}) == Emotion("happy", 1.0)
    assert Emotion.from_json({"name": None, "weight": None}) == NONE


NAMES = "an emotion's name must be one of happy, angry, sad, relaxed, surprised, or null for none"
WEIGHTS = "an emotion's weight must be a number above 0, at most 1"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({}, NAMES),
        ({"name": "Happy"}, NAMES),
        ({"name": "Joy"}, NAMES),
        ({"name": "aa"}, NAMES),
        ({"name": ["happy"]}, NAMES),
        ({"name": 1}, NAMES),
        ({"name": "happy", "weight": 0}, WEIGHTS),
        ({"name": "happy", "weight": 1.01}, WEIGHTS),
        ({"name": "happy", "weight": -0.5}, WEIGHTS),
        ({"name": "happy", "weight": True}, WEIGHTS),
        ({"name": "happy", "weight": "1"}, WEIGHTS),
        ({"name": "happy", "weight": math.nan}, WEIGHTS),
        ({"name": "happy", "weight": 10**400}, WEIGHTS),
    ],
)
def test_a_wrong_emotion_says_what_is_wrong(message: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match="^" + reason + "$"):
        Emotion.from_json(message)


def test_nothing_until_an_emotion_is_held_then_all_five_always() -> None:
    fader = EmotionFader()
    assert fader(None, 0.0) is None
    assert fader(None, 1000.0) is None
    first = fader(HAPPY, 2000.0)
    assert first == dict.fromkeys(EMOTIONS, 0.0)  # it starts from none, here
    quarter = fader(HAPPY, 2000.0 + FADE_MS / 4)
    assert quarter is not None
    assert quarter["happy"] == pytest.approx(0.25)
    whole = fader(HAPPY, 2000.0 + FADE_MS * 3)
    assert whole == {**dict.fromkeys(EMOTIONS, 0.0), "happy": 1.0}
    # Let go: back to 0 over the same fade, and still all five, so a receiver hears it.
    half = fader(NONE, 2000.0 + FADE_MS * 3.5)
    assert half == {**dict.fromkeys(EMOTIONS, 0.0), "happy": pytest.approx(0.5)}
    assert fader(None, 2000.0 + FADE_MS * 5) == dict.fromkeys(EMOTIONS, 0.0)


def happy_and_sad(fader: EmotionFader, held: Emotion, ms: float) -> list[float]:
    values = fader(held, ms)
    assert values is not None
    return [values["happy"], values["sad"]]


def test_one_emotion_fades_out_as_the_next_fades_in_to_its_weight() -> None:
    fader = EmotionFader()
    fader(HAPPY, 0.0)
    fader(HAPPY, FADE_MS)
    sad = Emotion("sad", 0.6)
    assert happy_and_sad(fader, sad, FADE_MS * 1.4) == pytest.approx([0.6, 0.4])
    assert happy_and_sad(fader, sad, FADE_MS * 3) == pytest.approx([0.0, 0.6])
    # A client's clock that runs back holds the fade where it is, and goes on from there.
    assert happy_and_sad(fader, HAPPY, FADE_MS * 2) == pytest.approx([0.0, 0.6])
    assert happy_and_sad(fader, HAPPY, FADE_MS * 2.5) == pytest.approx([0.5, 0.1])


def test_an_emotion_held_before_the_session_began_is_there_from_its_first_frame() -> None:
    fader = EmotionFader(Emotion("angry", 0.7))
    first = fader(Emotion("angry", 0.7), 5000.0)
    assert first == {**dict.fromkeys(EMOTIONS, 0.0), "angry": 0.7}
    out = fader(NONE, 5000.0 + FADE_MS / 2)
    assert out is not None
    assert out["angry"] == pytest.approx(0.2)


def test_the_rig_of_a_real_face_carries_the_held_emotion_beside_its_own() -> None:
    rec = gesture()
    session = AvatarSession(AvatarOptions(rig=True))
    plain = AvatarSession(AvatarOptions(rig=True))
    rigs, plains = [], []
    for i in range(8):
        emotion = None if i < 2 else Emotion("surprised", 0.8)
        ms = i * 40.0
        _, rig = session.process(rec.frame(i), ms, rec.width, rec.height, emotion=emotion)
        _, own = plain.process(rec.frame(i), ms, rec.width, rec.height)
        assert rig is not None
        assert own is not None
        rigs.append(rig)
        plains.append(own)
    # The face's own expressions and the bones are the same with and without.
    for rig, own in zip(rigs, plains, strict=True):
        assert rig["bones"] == own["bones"]
        assert {k: rig["expressions"][k] for k in EXPRESSIONS} == own["expressions"]
    assert not set(EMOTIONS) & set(rigs[1]["expressions"])
    surprised = [r["expressions"]["surprised"] for r in rigs[2:]]
    assert surprised == sorted(surprised)
    assert surprised[0] == 0.0
    assert surprised[-1] == pytest.approx(0.8)
    assert all(rigs[-1]["expressions"][name] == 0.0 for name in EMOTIONS if name != "surprised")


def test_vmc_sends_each_emotion_under_its_vrm0_name_and_its_own() -> None:
    rig = {"bones": {}, "expressions": dict.fromkeys(EMOTIONS, 0.0) | {"sad": 0.7}}
    values = {
        m.params[0]: m.params[1]
        for m in frame_messages(rig, 0.0)
        if m.address == "/VMC/Ext/Blend/Val"
    }
    assert {VRM0_EXPRESSION[name] for name in EMOTIONS} == {
        "Joy",
        "Angry",
        "Sorrow",
        "Fun",
        "Surprised",
    }
    assert values["Sorrow"] == pytest.approx(0.7)
    assert values["sad"] == pytest.approx(0.7)
    assert values["Joy"] == values["happy"] == 0.0
    assert values["Surprised"] == values["surprised"] == 0.0
