"""A frozen settings dataclass from CLI flags, each with an environment-variable twin.

Every field needs `metadata={"help": ...}` (and may give `"choices"`); its type, written
as a string annotation, is one of int, float, str or bool (`--flag` alone is yes;
`--flag=no` says no). Flags win over the environment, which wins over the defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

S = TypeVar("S", bound="DataclassInstance")


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r}; use yes or no (true/false, on/off, 1/0)")


def parse_int(text: str) -> int:
    # int()'s own words, "invalid literal for int() with base 10: 'abc'", were what
    # HOLOTRACK_WORKERS=abc said, and an empty twin (a compose file's unset variable) too.
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def parse_float(text: str) -> float:
    # float()'s: "could not convert string to float: 'abc'".
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def for_argparse(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """`convert` for argparse, which hides a ValueError's words behind "invalid parse_bool
    value": --wait=maybe then named a function, not what the flag takes."""

    def converted(text: str) -> Any:
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return converted


bool_flag = for_argparse(parse_bool)

CONVERTERS: dict[str, Callable[[str], Any]] = {
    "int": parse_int,
    "float": parse_float,
    "str": str,
    "bool": parse_bool,
}


def env_name(prefix: str, name: str) -> str:
    return prefix + name.upper()


class Parser(argparse.ArgumentParser):
    """argparse's parser with somewhere else to say a refusal: a server that logs JSON
    lines says it as one, which a log collector keeps (webapp/__main__.py)."""

    on_error: Callable[[str], NoReturn] | None = None

    def error(self, message: str) -> NoReturn:
        if self.on_error is not None:
            self.on_error(message)
        super().error(message)


def build_parser(
    cls: type[S],
    prefix: str,
    prog: str,
    description: str,
    on_error: Callable[[str], NoReturn] | None = None,
) -> Parser:
    # The description as written: a command's docstring keeps its example lines.
    parser = Parser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.on_error = on_error
    defaults = cls()
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        # Not "none" for an empty default: the swarm's --metrics-url takes "none" to mean
        # off, and --allowed-origins=none let no browser in; each help says what empty does.
        help_text = (
            f"{f.metadata['help']} [{env_name(prefix, f.name)}] "
            f"(default: {'empty' if default == '' else default})"
        )
        if f.type == "bool":
            # `--flag=no` too: a switch the environment turned on (a compose file's
            # HOLOTRACK_TRUST_PROXY=1) is turned off for one run by a flag, as flags win.
            parser.add_argument(
                flag,
                nargs="?",
                const=True,
                type=bool_flag,
                default=None,
                metavar="yes|no",
                help=help_text,
            )
            continue
        choices = f.metadata.get("choices")
        parser.add_argument(
            flag,
            type=for_argparse(CONVERTERS[str(f.type)]),
            default=None,
            choices=choices,
            metavar=None if choices else f.name.upper(),
            help=help_text,
        )
    return parser


def load(
    cls: type[S],
    *,
    prefix: str,
    prog: str,
    description: str,
    validate: Callable[[S], list[str]],
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    on_error: Callable[[str], NoReturn] | None = None,
) -> S:
    env = os.environ if environ is None else environ
    parser = build_parser(cls, prefix, prog, description, on_error)
    args = vars(parser.parse_args(argv))
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        given = args[f.name]
        if given is not None:
            values[f.name] = given
            continue
        raw = env.get(env_name(prefix, f.name))
        if raw is None:
            continue
        try:
            values[f.name] = CONVERTERS[str(f.type)](raw)
        except ValueError as exc:
            parser.error(f"{env_name(prefix, f.name)}: {exc}")
    settings = cls(**values)
    problems = validate(settings)
    if problems:
        parser.error("; ".join(problems))
    return settings
