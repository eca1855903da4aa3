"""`python -m webapp.vmc.relay`, run as on a PC at home that has only the relay's light
install (README, "VSeeFace, VNyan, Warudo"): Python's own modules, aiohttp, python-osc,
numpy and what pip brings with them. The interpreter's site-packages is swapped for a
folder that holds just those, so any other import fails here as it would there, and a
change that makes the relay need mediapipe, OpenCV or the like fails the tests that run
it this way.

    python tests/light_relay.py --watch ws://... --token ... --to 127.0.0.1:39539
"""

from __future__ import annotations

import atexit
import runpy
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What `pip install aiohttp python-osc numpy` installs (typing_extensions too, which
# aiosignal asks for before Python 3.13), by the top-level names they import as.
LIGHT = frozenset(
    {
        "aiohappyeyeballs", "aiohttp", "aiosignal", "attr", "attrs", "frozenlist", "idna",
        "multidict", "numpy", "propcache", "pythonosc", "typing_extensions", "yarl",
    }
)  # fmt: skip


def light_site_packages() -> Path:
    """A folder of links to the light packages of this interpreter's site-packages."""
    light = Path(tempfile.mkdtemp(prefix="holotrack-light-relay-"))
    atexit.register(shutil.rmtree, light, ignore_errors=True)
    for site in (Path(p) for p in sys.path if p.endswith("site-packages")):
        for entry in site.iterdir():
            # numpy.libs (numpy's own shared libraries) goes with numpy; metadata stays out.
            name = entry.name.removesuffix(".libs")
            wanted = name.partition(".")[0] in LIGHT and not name.endswith((".dist-info", ".pth"))
            link = light / entry.name
            # The first site-packages on the path wins, as it does for imports.
            if wanted and not link.exists():
                link.symlink_to(entry)
    return light


if __name__ == "__main__":
    light = light_site_packages()
    sys.path[:] = [str(ROOT), *(p for p in sys.path[1:] if "-packages" not in p), str(light)]
    runpy.run_module("webapp.vmc.relay", run_name="__main__", alter_sys=True)
