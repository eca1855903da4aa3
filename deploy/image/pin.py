"""Write deploy/image/requirements.txt: the image's exact versions, from the project's .venv.

`.venv/bin/python -m deploy.image.pin` walks pyproject's `dependencies` (not the
test or bench extras) and what they need in turn, and pins each at the
version `make run` resolved, so the image runs what the suite tested. Two changes, both
checked by tests/test_image.py against a server running from the image:

- opencv-contrib-python (a mediapipe dependency) becomes opencv-python-headless, as the
  Makefile does: the same cv2 without libGL.
- UNUSED are left out: mediapipe declares them for its model-making tools (jax, scipy,
  sentencepiece) and audio recording (sounddevice), which the server never imports.

The Dockerfile installs the file with `--no-deps`, so the pins are the whole environment.
`--check` exits 1, naming the differences, when the file is not what would be written.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

OUT = Path(__file__).with_name("requirements.txt")
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
# What mediapipe 0.10.21 depends on but the server never loads (measured: these are absent
# from sys.modules after every graph has run), with what pulls in the rest.
UNUSED = {
    "jax": "mediapipe's model makers",
    "jaxlib": "jax",
    "ml-dtypes": "jax",
    "opt-einsum": "jax",
    "scipy": "jax",
    "sentencepiece": "mediapipe's LLM bundler",
    "sounddevice": "mediapipe's audio recorder (it runs without it)",
    # cffi stays: cryptography (--self-signed) loads its compiled backend, never its parser.
    "pycparser": "cffi's C parser",
}
SWAP = {"opencv-contrib-python": "opencv-python-headless"}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve(roots: list[str]) -> dict[str, str]:
    """Every distribution `roots` need at run time, with its installed version."""
    found: dict[str, str] = {}
    todo = [Requirement(root).name for root in roots]
    while todo:
        name = norm(todo.pop())
        name = SWAP.get(name, name)
        if name in found or name in UNUSED:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            sys.exit(f"{name} is not installed in this environment: run `make run` first")
        found[name] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return found


def render() -> str:
    with PYPROJECT.open("rb") as f:
        pins = resolve(tomllib.load(f)["project"]["dependencies"])
    lines = [
        "# The image's Python packages, exactly. Written by `.venv/bin/python -m deploy.image.pin`",
        "# from what `make run` installed; the Dockerfile installs it with --no-deps.",
        "# Left out, never imported by the server: " + ", ".join(sorted(UNUSED)) + ".",
        f"pip=={md.version('pip')}",
        *(f"{name}=={version}" for name, version in sorted(pins.items())),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.image.pin", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    text = render()
    if not args.check:
        OUT.write_text(text)
        print(f"wrote {OUT}")
        return 0
    have = OUT.read_text() if OUT.exists() else ""
    if have == text:
        return 0
    old, new = set(have.splitlines()), set(text.splitlines())
    for line in sorted(old - new):
        print(f"- {line}")
    for line in sorted(new - old):
        print(f"+ {line}")
    print(f"{OUT} is out of date: run .venv/bin/python -m deploy.image.pin", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
