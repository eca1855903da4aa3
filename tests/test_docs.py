"""The documents against the code: flags and their twins, close codes, message types,
metrics, HTTP refusals, the commands they show, and the links between them.

Text and imports only, no server and no model, so it runs in well under two seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import deploy.cluster
import swarm.config
import webapp.export.__main__ as export_cli
from webapp import config, errors, flags
from webapp.access.errors import AccessDenied, QuotaExceeded
from webapp.analysis.fitness import Workout, load_exercises
from webapp.http_errors import STATUS
from webapp.live.session import FRAME_ERROR_CODES
from webapp.metrics import Metrics
from webapp.protocol import ClientType, Close, ServerType
from webapp.vmc import relay_config

ROOT = Path(__file__).resolve().parent.parent
# Folders that hold no documents of ours: tools' and benchmarks' output, installed packages.
SKIPPED_DIRS = {".git", ".venv", "node_modules", "out", "__pycache__", ".mypy_cache"}
# Close codes aiohttp's own reader sends (or reports) without the session: protocol.md lists
# them beside the server's, and webapp/protocol.py has no name for them.
AIOHTTP_CLOSES = {1002, 1006, 1007}
# Refusals made outside webapp/http_errors.STATUS: aiohttp's router and the
# catch-all (same module), and the access layer (webapp/access/http.py).
OTHER_REFUSALS = {
    (404, "not_found"),
    (405, "method_not_allowed"),
    (500, "internal"),
    (401, AccessDenied.code),
    (429, QuotaExceeded.code),
    (403, QuotaExceeded.code),  # a limit of 0 (access/http.py too_many)
}


def read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def documents() -> Iterator[Path]:
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        for name in sorted(files):
            if name.endswith(".md"):
                yield Path(folder, name)


def first_cells(text: str, cell: str) -> list[str]:
    """The first cell of each Markdown table row it matches (`cell`: a regex, one group)."""
    return re.findall(rf"^\| {cell} \|", text, re.MULTILINE)


def first_two_cells(text: str, cells: str) -> list[tuple[str, str]]:
    """The same for a row's first two cells (`cells`: a regex with two groups)."""
    return re.findall(rf"^\| {cells} \|", text, re.MULTILINE)


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


CLI_OPTIONS = {
    "webapp": options(config.build_parser()),
    "swarm": options(swarm.config.build_parser()),
    "webapp.export": options(export_cli.build_parser()),
    "webapp.vmc.relay": options(
        flags.build_parser(relay_config.RelayFlags, relay_config.ENV_PREFIX, "relay", "")
    ),
    "deploy.cluster": options(deploy.cluster.build_parser()),
}


def test_the_limits_table_lists_every_flag_with_its_twin() -> None:
    listed = set(
        first_two_cells(read("docs/SECURITY.md"), r"`(--[a-z-]+)` \| `(HOLOTRACK_[A-Z_]+)`")
    )
    flags = {
        ("--" + f.name.replace("_", "-"), config.env_name(f.name))
        for f in dataclasses.fields(config.Config)
    }
    assert flags - listed == set(), "flags of webapp/config.py missing from docs/SECURITY.md"
    assert listed - flags == set(), "docs/SECURITY.md lists flags webapp/config.py lacks"


def test_every_close_code_is_in_the_protocols_table() -> None:
    documented = {int(code) for code in first_cells(read("docs/protocol.md"), r"(\d{4})")}
    ours = {int(code) for code in Close}
    assert ours - documented == set(), "close codes of webapp/protocol.py missing"
    assert documented - ours == AIOHTTP_CLOSES


def test_every_message_type_is_shown_in_the_protocol() -> None:
    text = read("docs/protocol.md")
    missing = [t.value for t in (*ClientType, *ServerType) if f'"type": "{t.value}"' not in text]
    assert missing == []


def test_the_session_error_codes_are_the_ones_sent() -> None:
    text = read("docs/protocol.md")
    section = text.split("## Errors the session survives", 1)[1].split("\n## ", 1)[0]
    documented = set(first_cells(section, r"`([a-z_]+)`"))
    # Besides a frame's errors, those the session's code sends by name.
    named = {
        code
        for path in (ROOT / "webapp" / "live").glob("*.py")
        for code in re.findall(r'messages\.error\(\s*"([a-z_]+)"', path.read_text())
    }
    assert {"no_exercise", "no_rig", "no_pose"} <= named
    assert documented == set(FRAME_ERROR_CODES.values()) | named


def exposed_metrics() -> set[str]:
    """Every series name /metrics can show, from the sources that register them."""
    names: set[str] = set()
    for path in (ROOT / "webapp").rglob("*.py"):
        for kind, name in re.findall(r'(\w+)\(\s*"(holotrack_\w+)"', path.read_text()):
            if kind.startswith("Counter"):
                names.add(name + "_total")
            elif kind.startswith("Histogram"):
                names |= {name, name + "_bucket", name + "_count", name + "_sum"}
            else:
                names.add(name)
    return names


def test_every_metric_the_documents_name_is_exposed() -> None:
    exposed = exposed_metrics()
    assert {"holotrack_frames_total", "holotrack_sessions_live"} <= exposed
    named = {
        (path.relative_to(ROOT).as_posix(), name)
        for path in documents()
        for name in re.findall(r"\b(holotrack_[a-z_]+)", path.read_text(encoding="utf-8"))
    }
    assert sorted((doc, name) for doc, name in named if name not in exposed) == []


def test_the_outcomes_a_document_lists_are_the_ones_counted() -> None:
    # The list right after the series: "`holotrack_x_total{outcome}` (a, b, c)", or one
    # that says what some mean: "(a, b: what they mean; c: what it means)". Read as a
    # plain list only, the pairing claims' went unchecked and missed key_removed.
    counted: dict[str, set[str]] = {}
    for family in Metrics().registry.collect():
        for sample in family.samples:
            if "outcome" in sample.labels:
                counted.setdefault(sample.name, set()).add(sample.labels["outcome"])
    wrong = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        for name, listed in re.findall(r"`(holotrack_\w+)\{outcome\}`\s*\(([^)]*)\)", text):
            named = (part.partition(":")[0] for part in listed.split(";"))
            said = {word.strip() for words in named for word in words.split(",")}
            if said != counted.get(name):
                wrong.append((path.relative_to(ROOT).as_posix(), name, sorted(said)))
    assert wrong == []


@pytest.mark.parametrize("document", ["README.md", "docs/api.md", "docs/recordings.md"])
def test_every_refusal_in_a_status_table_is_one_the_code_makes(document: str) -> None:
    made = {(status, cls.code) for cls, status in STATUS.items()} | OTHER_REFUSALS
    assert all(issubclass(cls, errors.HolotrackError) for cls in STATUS)
    table = first_two_cells(read(document), r"(\d{3}) \| `([a-z_]+)`")
    rows = {(int(status), code) for status, code in table}
    assert rows, f"{document} has no status table"
    assert sorted(rows - made) == []


def commands(text: str) -> Iterator[tuple[str, str]]:
    """(CLI, its arguments) for each command a document shows, continuation lines joined."""
    text = text.replace("\\\n", " ")
    for module, rest in re.findall(r"python -m ([A-Za-z_][\w.]*)([^`\n]*)", text):
        yield module, rest.split(" #")[0]
    for target, args in re.findall(r'make (run|cluster) ARGS="([^"]*)"', text):
        if target == "run":
            yield "webapp", args
        else:
            own, _, servers = args.partition("-- ")
            yield "deploy.cluster", own
            yield "webapp", servers


def test_the_commands_shown_use_flags_their_cli_has() -> None:
    wrong = []
    for path in documents():
        for module, rest in commands(path.read_text(encoding="utf-8")):
            if module not in CLI_OPTIONS:
                continue
            for flag in re.findall(r"(?<!\S)(--[a-z][a-z0-9-]*)", rest):
                if flag not in CLI_OPTIONS[module]:
                    wrong.append((path.relative_to(ROOT).as_posix(), module, flag))
    assert wrong == []


def test_every_module_the_documents_run_exists() -> None:
    missing = []
    for path in documents():
        for module, _ in commands(path.read_text(encoding="utf-8")):
            parts = module.split(".")
            if parts[0] not in {"webapp", "swarm", "bench", "deploy"} or parts[-1].isupper():
                continue  # the standard library's (venv), or a placeholder (bench.X)
            base = ROOT.joinpath(*parts)
            if not (base.with_suffix(".py").is_file() or (base / "__main__.py").is_file()):
                missing.append((path.relative_to(ROOT).as_posix(), module))
    assert missing == []


def test_the_architecture_names_the_route_setups_routes_py_calls() -> None:
    # The routes became one table in routes.py: the row still said every feature's routes
    # came through its own setup_*_route(s), sending a reader to functions that are gone.
    called = set(re.findall(r"^\s+(setup_\w+)\(app\)", read("webapp/routes.py"), re.M))
    row = next(line for line in read("docs/architecture.md").splitlines() if "`routes.py`" in line)
    named = set(re.findall(r"`(setup_\w+)`", row)) - {"setup_routes"}
    assert len(called) >= 3
    assert named == called


def test_every_bench_and_deploy_script_answers_help_with_its_own_command() -> None:
    # bench/README.md: "python -m bench.X --help for the flags". A script that parses no
    # command line runs instead, and overwrote committed pictures once. deploy.image.pin's
    # said "usage: pin.py", a name nobody can run.
    wrong = []
    scripts = [*(ROOT / "bench").glob("*.py"), *(ROOT / "deploy").rglob("*.py")]
    for path in sorted(scripts):
        source = path.read_text()
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        command = f"python -m {module}"
        if command in source and f'prog="{command}"' not in source:
            wrong.append(path.relative_to(ROOT).as_posix())
    assert wrong == []


def test_the_bench_scripts_said_to_write_reports_are_the_ones_that_do() -> None:
    # "Each ... writes its reports under bench/out/" was read as true of bench.inflight and
    # bench.asked_rate too, which only print.
    section = read("bench/README.md").split("## The others", 1)[1].split("\n## ", 1)[0]
    listed = set(first_cells(section, r"`bench\.(\w+)`"))
    said = re.search(r"all but (.*?),\s+which only print", section, re.DOTALL)
    assert said is not None, "bench/README.md no longer says which scripts only print"
    only_print = set(re.findall(r"`bench\.(\w+)`", said.group(1)))
    writing = {
        name
        for name in listed
        if re.search(r'"out"|bench/out|\bOUT\b', (ROOT / "bench" / f"{name}.py").read_text())
    }
    assert len(listed) > 5
    assert listed - only_print == writing


def top_level_keys(text: str, start: int) -> list[str]:
    """The keys of the JSON object opening at text[start], nested ones left out (the
    documents abridge their examples with `...`, so they are read, not parsed)."""
    keys: list[str] = []
    depth = 0
    for match in re.finditer(r'[{}\[\]]|"(\w+)":', text[start:]):
        token = match.group(0)
        if token in "{[":
            depth += 1
        elif token in "}]":
            depth -= 1
            if depth == 0:
                return keys
        elif depth == 1:
            keys.append(match.group(1))
    raise AssertionError(f"an object left open at {text[start : start + 60]!r}")


def test_every_fitness_example_has_the_keys_a_result_carries() -> None:
    # recordings.md's real line lost "target" when the rep target was added.
    sent = list(Workout(load_exercises(), "bicep_curl").update(None, (640, 480), 0.0))
    wrong = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        for example in re.finditer(r'"fitness": (?=\{"exercise")', text):
            shown = top_level_keys(text, example.end())
            if shown != sent:
                wrong.append((path.relative_to(ROOT).as_posix(), shown))
    assert wrong == []


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    found: set[str] = set()
    in_code = False
    for line in document.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        heading = re.match(r"#{1,6} (.+)", line)
        if heading and not in_code:
            anchor = github_anchor(heading.group(1))
            n = sum(1 for a in found if a == anchor or re.fullmatch(rf"{re.escape(anchor)}-\d+", a))
            found.add(anchor if n == 0 else f"{anchor}-{n}")
    return found


def test_the_architecture_names_every_shared_module() -> None:
    text = read("docs/architecture.md")
    shared = sorted((ROOT / "webapp").glob("*.py"))
    assert len(shared) > 20
    unnamed = [p.name for p in shared if not p.stem.startswith("__") and f"`{p.name}`" not in text]
    assert unnamed == []


def test_the_engine_imports_only_what_the_architecture_says() -> None:
    rule = re.search(
        r"^Imports go one way: .* -> `engine` -> (.*)\.$", read("docs/architecture.md"), re.M
    )
    assert rule is not None
    allowed = set(re.findall(r"`(\w+)`", rule.group(1)))
    imported = {
        name
        for path in (ROOT / "webapp" / "engine").rglob("*.py")
        for name in re.findall(r"^\s*(?:from|import) webapp\.(\w+)", path.read_text(), re.M)
    }
    assert "errors" in imported
    assert sorted(imported - allowed - {"engine"}) == []


def test_github_anchors_are_made_as_github_makes_them() -> None:
    assert github_anchor("Video files: POST /api/video") == "video-files-post-apivideo"
    assert github_anchor("Avatars: the rig") == "avatars-the-rig"


def test_every_relative_link_resolves() -> None:
    broken = []
    for path in documents():
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            where = path.relative_to(ROOT).as_posix()
            if not linked.exists():
                broken.append((where, target, "no such file"))
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append((where, target, "no such heading"))
    assert broken == []


def section_titles(text: str) -> list[str]:
    """A document's headings and the bold words that open its paragraphs (`**A kept
    link.**`): the two kinds of section a `see "..."` sends the reader to."""
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    headings = re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)
    leads = re.findall(r"^\*\*([^*]+)\*\*", text, re.MULTILINE)
    return [title.strip().rstrip(".:") for title in headings + leads]


def test_every_section_a_document_sends_to_is_in_it() -> None:
    # `(see "Avatars, watchers and VMC" below)` named a section protocol.md never had.
    missing = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        titles = [title.lower() for title in section_titles(text)]
        for said in re.findall(r'\bsee "([^"{]+)"', re.sub(r"\s+", " ", text)):
            if not any(title.startswith(said.lower()) for title in titles):
                missing.append((path.relative_to(ROOT).as_posix(), said))
    assert missing == []


def module_file(dotted: str) -> Path | None:
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_every_dotted_name_in_the_documents_exists() -> None:
    # Read, not imported: a name its module defines or imports (`webapp.engine.inference.X`).
    missing = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        for dotted in re.findall(r"`((?:webapp|swarm|bench|deploy)(?:\.\w+)+)`", text):
            module, _, name = dotted.rpartition(".")
            if module_file(dotted) is not None:
                continue
            source = module_file(module)
            defined = rf"^(?:def|class) {name}\b|^{name}\b.*=|^from .* import .*\b{name}\b"
            if source is None or not re.search(defined, source.read_text(), re.MULTILINE):
                missing.append((path.relative_to(ROOT).as_posix(), dotted))
    assert missing == []


def test_the_turns_section_says_how_long_the_page_waits_for_a_new_picture() -> None:
    # The page waits on a turn for a camera picture it has not sent (static/capture.js):
    # the section still said a frame goes at each turn, which a 2 fps camera's page no
    # longer does, and a client written from it would resend each picture.
    waits = re.search(r"const NEW_PICTURE_MS = ([\d_]+);", read("static/capture.js"))
    assert waits is not None, "static/capture.js no longer names NEW_PICTURE_MS"
    section = read("docs/protocol.md").split("## Turns", 1)[1].split("\n## ", 1)[0]
    said = re.search(r"The page sends each camera picture once.*?up to (\d+) ms", section, re.S)
    assert said is not None, "docs/protocol.md's Turns section does not say the page's wait"
    assert int(said.group(1)) == int(waits.group(1).replace("_", ""))
