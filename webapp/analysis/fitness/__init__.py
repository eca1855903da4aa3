"""Exercise rep counting and form cues from pose landmarks (issue 14). Pure: no aiohttp, no
mediapipe. Exercises are data (exercises.toml); one counter serves them all."""

from webapp.analysis.fitness.exercises import (
    Exercise,
    ExerciseDataError,
    Phase,
    UnknownExercise,
)
from webapp.analysis.fitness.loader import load_exercises
from webapp.analysis.fitness.workout import MAX_TARGET, Workout

__all__ = [
    "MAX_TARGET",
    "Exercise",
    "ExerciseDataError",
    "Phase",
    "UnknownExercise",
    "Workout",
    "load_exercises",
]
