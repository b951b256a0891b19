"""Command-line options: the parser, and the settings merged from defaults, the config file
and the command line (in that order of precedence, last wins).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.cli.batch import DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT
from analyzer.cli.config import config_values, find_pyproject, read_config
from analyzer.cli.policy import parse_percent, parse_size
from analyzer.core import sandbox
from analyzer.core.version import __version__
from analyzer.report.reporters import names as format_names

if TYPE_CHECKING:
    from analyzer.rules import Rule

PROG = "onnx-audit"
DEFAULTS: dict[str, Any] = {
    "format": "table",
    "input_shape": [],
    "kernel": 3,
    "min_ratio": 2.0,
    "select": [],
    "ignore": [],
    "fail_on": [],
    "jobs": 1,
    "max_memory": DEFAULT_MAX_MEMORY,
    "timeout": DEFAULT_TIMEOUT,
    "price_batch": 32,
}


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


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """analyzer.view.shapes.parse_input_shape, imported only when --input-shape is given."""
    from analyzer.view import shapes  # noqa: PLC0415  (shapes imports onnx)

    return shapes.parse_input_shape(text)


def build_parser(command: str) -> argparse.ArgumentParser:
    """The parser of `check` (default) or `diff`; option defaults are None so config can fill in."""
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
    if command == "verify":
        parser.set_defaults(verify=True)
    if command == "diff":
        parser.add_argument("old", metavar="OLD.onnx")
        parser.add_argument("new", metavar="NEW.onnx")
        parser.add_argument(
            "--max-growth", type=parse_percent, help="fail (exit 1) when params grew more, e.g. 5%%"
        )
    else:
        parser.add_argument(
            "paths", nargs="+", metavar="MODEL", help="model files or folders (searched for *.onnx)"
        )
    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=format_names(), help="output format (default: table)")
    out.add_argument(
        "-o", "--output", metavar="FILE", help="write the report to FILE (default: stdout)"
    )
    out.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    analysis = parser.add_argument_group("analysis")
    analysis.add_argument(
        "--input-shape",
        action="append",
        type=parse_input_shape,
        metavar="NAME=D1,D2,...",
        help="fix the dims of a dynamic input, e.g. input=1,3,224,224 (repeatable)",
    )
    analysis.add_argument(
        "--kernel", type=_positive_int, help="kernel size k of the suggested conv (default 3)"
    )
    analysis.add_argument(
        "--min-ratio", type=_positive_float, help="flag when dense/conv weights >= this (default 2)"
    )
    analysis.add_argument(
        "--select",
        action="append",
        type=_comma_list,
        metavar="CODES",
        help="only these rules (codes, prefixes, names)",
    )
    analysis.add_argument(
        "--ignore", action="append", type=_comma_list, metavar="CODES", help="skip these rules"
    )
    analysis.add_argument("--preview", action="store_true", help="also run rules still in preview")
    policy = parser.add_argument_group("policies (exit 1 when violated)")
    policy.add_argument(
        "--max-params", type=parse_size, metavar="N", help="total parameters, e.g. 25M"
    )
    policy.add_argument(
        "--max-weight-bytes",
        type=parse_size,
        metavar="SIZE",
        help="stored weight bytes, e.g. 100MB, 2GiB",
    )
    policy.add_argument(
        "--max-layer-params",
        type=parse_size,
        metavar="N",
        help="parameters of any one layer, e.g. 300k",
    )
    policy.add_argument(
        "--fail-on",
        action="append",
        type=_comma_list,
        metavar="CODES",
        help="rule codes or names that fail the run",
    )
    ort = parser.add_argument_group("onnxruntime (never imported without these)")
    ort.add_argument(
        "--verify",
        action="store_true",
        help="run the model once in onnxruntime and price each finding",
    )
    ort.add_argument(
        "--price-batch",
        type=_positive_int,
        metavar="N",
        help="larger batch used to price findings (default 32)",
    )
    ort.add_argument(
        "--emit-candidate",
        metavar="OUT.onnx",
        help="write the model with every flagged layer replaced",
    )
    ort.add_argument("--force", action="store_true", help="let --emit-candidate overwrite OUT.onnx")
    run = parser.add_argument_group("running")
    run.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: [tool.onnx-audit] in the nearest pyproject.toml)",
    )
    run.add_argument(
        "--jobs", "-j", type=_positive_int, help="models analysed in parallel (default 1)"
    )
    run.add_argument(
        "--max-memory", type=parse_size, metavar="SIZE", help="memory cap per model (default 4GiB)"
    )
    run.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="time limit per model (default 300)",
    )
    run.add_argument(
        "--debug", action="store_true", help="tracebacks and why candidates were rejected"
    )
    run.add_argument(
        "--no-sandbox",
        action="store_true",
        help="analyse in this process: no memory cap, no time limit, stderr shown (for "
        f"debugging; also {sandbox.ENV_OFF}=1)",
    )
    run.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


@dataclass(frozen=True, slots=True)
class Settings:
    """Options after merging defaults, config file and command line (in that order)."""

    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def _flatten(value: Any) -> list[str]:
    out: list[str] = []
    for item in value or []:
        out.extend(item if isinstance(item, list) else [item])
    return out


def parse_settings(command: str, argv: list[str]) -> Settings:
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.config:
        config_path: Path | None = Path(args.config)
        section = read_config(Path(args.config), explicit=True)
    else:
        config_path = find_pyproject(Path.cwd())
        section = read_config(config_path, explicit=False) if config_path else {}
    from_config = config_values(parser, section, str(config_path)) if section else {}
    values: dict[str, Any] = {}
    for key, value in vars(args).items():
        given = value not in (None, False, [])
        values[key] = value if given else from_config.get(key, DEFAULTS.get(key, value))
    for key in ("select", "ignore", "fail_on"):
        values[key] = _flatten(values[key])
    values["input_shape"] = dict(values["input_shape"] or [])
    values["no_sandbox"] = bool(values["no_sandbox"]) or not sandbox.enabled()
    return Settings(values)


def rule_filter(settings: Settings) -> Callable[[Rule], bool]:
    def selected(selectors: list[str], rule: Rule) -> bool:
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


__all__ = ["PROG", "Settings", "build_parser", "parse_settings", "rule_filter"]
