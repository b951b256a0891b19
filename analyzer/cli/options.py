"""Command-line options: the parser, and the settings merged from defaults, the config file
and the command line (in that order of precedence, last wins).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.cli.batch import DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT
from analyzer.cli.config import config_values, find_pyproject, read_config
from analyzer.cli.declare import ArgumentGroup, Option
from analyzer.cli.policy import parse_percent, parse_size
from analyzer.core import sandbox
from analyzer.core.version import __version__
from analyzer.report.reporters import names as format_names

if TYPE_CHECKING:
    from analyzer.rules import Rule

PROG = "onnx-audit"
POLICIES = "policies (exit 1 when violated)"
ORT = "onnxruntime (never imported without these)"


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _depth(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """analyzer.view.inputshapes.parse_input_shape, imported only when --input-shape is given."""
    from analyzer.view import inputshapes  # noqa: PLC0415  (only with --input-shape)

    return inputshapes.parse_input_shape(text)


def _formats() -> list[str]:
    return format_names()


ALL = frozenset({"check", "diff", "verify"})
OPTIONS: tuple[Option, ...] = (
    Option(
        flags=("--max-growth",),
        group="",
        parse=parse_percent,
        help="fail (exit 1) when params grew more, e.g. 5%%",
        commands=frozenset({"diff"}),
    ),
    Option(
        flags=("--format",), group="output", choices=_formats, help="output format (default: table)"
    ),
    Option(
        flags=("-o", "--output"),
        group="output",
        metavar="FILE",
        help="write the report to FILE (default: stdout)",
        config=False,
    ),
    Option(flags=("--no-progress",), group="output", kind="flag", help="no progress bar on stderr"),
    Option(
        flags=("--depth",),
        group="output",
        parse=_depth,
        metavar="N",
        help="table/html: fold layers into modules N deep (0: every node; default: the depth "
        "that keeps the table under 60 rows)",
    ),
    Option(
        flags=("--color",),
        group="output",
        choices=lambda: ("auto", "always", "never"),
        help="colour the table (default auto: on a terminal, unless NO_COLOR is set)",
    ),
    Option(
        flags=("--input-shape",),
        group="analysis",
        kind="many",
        parse=parse_input_shape,
        metavar="NAME=D1,D2,...",
        help="fix the dims of a dynamic input, e.g. input=1,3,224,224 (repeatable)",
    ),
    Option(
        flags=("--kernel",),
        group="analysis",
        parse=_positive_int,
        help="kernel size k of the suggested conv (default 3)",
    ),
    Option(
        flags=("--min-ratio",),
        group="analysis",
        parse=_positive_float,
        help="flag when dense/conv weights >= this (default 2)",
    ),
    Option(
        flags=("--separable-min-channels",),
        group="analysis",
        parse=_positive_int,
        help="ONX102: only convs with at least this many input channels (default 32)",
    ),
    Option(
        flags=("--rank",),
        group="analysis",
        parse=_positive_int,
        help="ONX104: rank of the suggested factorisation (default: the largest saving 4x)",
    ),
    Option(
        flags=("--select",),
        group="analysis",
        kind="many",
        parse=_comma_list,
        metavar="CODES",
        help="only these rules (codes, prefixes, names)",
    ),
    Option(
        flags=("--ignore",),
        group="analysis",
        kind="many",
        parse=_comma_list,
        metavar="CODES",
        help="skip these rules",
    ),
    Option(
        flags=("--preview",), group="analysis", kind="flag", help="also run rules still in preview"
    ),
    Option(
        flags=("--inspect-weights",),
        group="analysis",
        kind="flag",
        help="also read every weight value (streamed, external data after safety checks): "
        "NaN/Inf, zeros, fp16 range, duplicates",
    ),
    Option(
        flags=("--max-params",),
        group=POLICIES,
        parse=parse_size,
        metavar="N",
        help="total parameters, e.g. 25M",
    ),
    Option(
        flags=("--max-weight-bytes",),
        group=POLICIES,
        parse=parse_size,
        metavar="SIZE",
        help="stored weight bytes, e.g. 100MB, 2GiB",
    ),
    Option(
        flags=("--max-layer-params",),
        group=POLICIES,
        parse=parse_size,
        metavar="N",
        help="parameters of any one layer, e.g. 300k",
    ),
    Option(
        flags=("--fail-on",),
        group=POLICIES,
        kind="many",
        parse=_comma_list,
        metavar="CODES",
        help="rule codes or names that fail the run",
    ),
    Option(
        flags=("--verify",),
        group=ORT,
        kind="flag",
        help="run the model once in onnxruntime and price each finding",
    ),
    Option(
        flags=("--price-batch",),
        group=ORT,
        parse=_positive_int,
        metavar="N",
        help="larger batch used to price findings (default 32)",
    ),
    Option(
        flags=("--emit-candidate",),
        group=ORT,
        metavar="OUT.onnx",
        help="write the model with every flagged layer replaced",
    ),
    Option(
        flags=("--force",), group=ORT, kind="flag", help="let --emit-candidate overwrite OUT.onnx"
    ),
    Option(
        flags=("--config",),
        group="running",
        metavar="FILE",
        help="config file (default: [tool.onnx-audit] in the nearest pyproject.toml)",
        config=False,
    ),
    Option(
        flags=("--jobs", "-j"),
        group="running",
        parse=_positive_int,
        help="models analysed in parallel (default 1)",
    ),
    Option(
        flags=("--max-memory",),
        group="running",
        parse=parse_size,
        metavar="SIZE",
        help="memory cap per model (default 4GiB)",
    ),
    Option(
        flags=("--timeout",),
        group="running",
        parse=_positive_float,
        metavar="SECONDS",
        help="time limit per model (default 300)",
    ),
    Option(
        flags=("--debug",),
        group="running",
        kind="flag",
        help="tracebacks and why candidates were rejected",
    ),
    Option(
        flags=("--no-sandbox",),
        group="running",
        kind="flag",
        help="analyse in this process: no memory cap, no time limit, stderr shown (for "
        f"debugging; also {sandbox.ENV_OFF}=1)",
    ),
)
"""Every option of every command, in --help order; each one's key in [tool.onnx-audit] is its
long name."""


def options(command: str) -> tuple[Option, ...]:
    return tuple(option for option in OPTIONS if command in option.commands)


def build_parser(command: str) -> argparse.ArgumentParser:
    """The parser of `check` (default), `diff` or `verify`, built from OPTIONS."""
    usage = {
        "check": "onnx-audit [options] MODEL|DIR [MODEL|DIR ...]",
        "diff": "onnx-audit diff [options] OLD.onnx NEW.onnx",
        "verify": "onnx-audit verify [options] MODEL [MODEL ...]",
    }[command]
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=usage,
        description="Count every parameter of an ONNX model and flag dense layers a convolution "
        "could replace. Other commands: `onnx-audit diff OLD NEW`, `onnx-audit rules`, "
        "`onnx-audit explain CODE`.",
    )
    if command == "diff":
        parser.add_argument("old", metavar="OLD.onnx")
        parser.add_argument("new", metavar="NEW.onnx")
    else:
        parser.add_argument(
            "paths", nargs="+", metavar="MODEL", help="model files or folders (searched for *.onnx)"
        )
    groups: dict[str, ArgumentGroup] = {"": parser}
    for option in options(command):
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        option.add_to(groups[option.group])
    groups["running"].add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Options after merging defaults (here), the config file and the command line."""

    command: str = "check"
    paths: tuple[str, ...] = ()
    old: str = ""
    new: str = ""
    max_growth: float | None = None
    format: str = "table"
    output: str | None = None
    no_progress: bool = False
    depth: int | None = None
    color: str = "auto"
    input_shape: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    kernel: int = 3
    min_ratio: float = 2.0
    separable_min_channels: int = 32
    rank: int | None = None
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    preview: bool = False
    inspect_weights: bool = False
    max_params: int | None = None
    max_weight_bytes: int | None = None
    max_layer_params: int | None = None
    fail_on: tuple[str, ...] = ()
    verify: bool = False
    price_batch: int = 32
    emit_candidate: str | None = None
    force: bool = False
    config: str | None = None
    jobs: int = 1
    max_memory: int | None = DEFAULT_MAX_MEMORY
    timeout: float | None = DEFAULT_TIMEOUT
    debug: bool = False
    no_sandbox: bool = False


def _flatten(value: Any) -> list[str]:
    out: list[str] = []
    for item in value or []:
        out.extend(item if isinstance(item, list) else [item])
    return out


def parse_settings(command: str, argv: list[str]) -> Settings:
    """Settings for `command` from argv, over the config file, over Settings' defaults."""
    args = vars(build_parser(command).parse_args(argv))
    if args["config"]:
        config_path: Path | None = Path(args["config"])
        section = read_config(Path(args["config"]), explicit=True)
    else:
        config_path = find_pyproject(Path.cwd())
        section = read_config(config_path, explicit=False) if config_path else {}
    declared = options(command)
    values = config_values(declared, section, str(config_path)) if section else {}
    values.update({k: v for k, v in args.items() if v is not None and v is not False and v != []})
    for key in ("select", "ignore", "fail_on"):
        values[key] = tuple(_flatten(values.get(key)))
    values["input_shape"] = dict(values.get("input_shape") or [])
    values["paths"] = tuple(values.get("paths", ()))
    values["verify"] = values.get("verify", False) or command == "verify"
    values["no_sandbox"] = values.get("no_sandbox", False) or not sandbox.enabled()
    return Settings(command=command, **values)


def rule_filter(settings: Settings) -> Callable[[Rule], bool]:
    def selected(selectors: Sequence[str], rule: Rule) -> bool:
        return any(
            s.upper() == "ALL" or rule.code.startswith(s.upper()) or rule.name == s
            for s in selectors
        )

    def enabled(rule: Rule) -> bool:
        if rule.preview and not settings.preview and not selected(settings.select, rule):
            return False
        if settings.select and not selected(settings.select, rule):
            return False
        return not selected(settings.ignore, rule)

    return enabled


__all__ = [
    "OPTIONS",
    "PROG",
    "Settings",
    "build_parser",
    "options",
    "parse_settings",
    "rule_filter",
]
