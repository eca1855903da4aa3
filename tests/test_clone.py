"""A clone of the repository stands on its own: no ../shared beside it, media inside."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed tree, cloned into a folder with nothing beside it, as a new user has it."""
    target = tmp_path_factory.mktemp("empty") / "holotrack"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    assert not (target.parent / "shared").exists()
    return target


def run_in(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The override would point back into this checkout: a new user has no such variable.
    env = {k: v for k, v in os.environ.items() if k != "HOLOTRACK_MEDIA"}
    return subprocess.run(
        [sys.executable, *args], cwd=clone, env=env, capture_output=True, text=True, timeout=600
    )


def test_clone_finds_its_own_media(clone: Path) -> None:
    done = run_in(
        clone,
        "-c",
        "import tests.media as m, swarm.config as s; "
        "print(m.MEDIA); print(len(m.STILLS)); print(s.default_source())",
    )
    assert done.returncode == 0, done.stderr
    media, stills, video = done.stdout.split()
    assert Path(media) == clone / "media"
    assert int(stills) == 4
    assert Path(video).is_file()
    assert Path(video).parent == clone / "media"


def test_clone_collects_the_whole_suite_and_runs_real_tests(clone: Path) -> None:
    collected = run_in(clone, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    assert "error" not in collected.stdout.lower().splitlines()[-1]
    # The real model on the clone's own photos, and frames cut from the clone's own video.
    ran = run_in(
        clone,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/test_predict.py::test_every_still_gives_the_whole_body",
        "tests/test_swarm.py::test_calibration_measures_the_model_in_process",
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert " passed" in ran.stdout.splitlines()[-1]
    assert "skipped" not in ran.stdout.splitlines()[-1]
