"""`[tool.onnx-audit]` in pyproject.toml: found by walking up from the current directory.

Keys are the long option names (`max-params = "25M"`); values go through the same parsing as
the command line, so a bad value fails the same way. Command-line options win.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from analyzer.core.errors import AuditError, UsageError

SECTION = "onnx-audit"


def find_pyproject(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def read_config(path: Path, *, explicit: bool) -> dict[str, Any]:
    """The [tool.onnx-audit] table (or, for an explicit non-pyproject file, its top level)."""
    import tomllib  # noqa: PLC0415  (only when a config file exists: 2-3 ms at start-up)

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(str(path), f"cannot read config: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(str(path), f"invalid TOML: {exc}") from None
    tool = data.get("tool", {})
    if isinstance(tool, dict) and SECTION in tool:
        section = tool[SECTION]
    elif explicit and path.name != "pyproject.toml":
        section = data
    else:
        return {}
    if not isinstance(section, dict):
        raise UsageError(str(path), f"[tool.{SECTION}] must be a table")
    return section


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    found: dict[str, argparse.Action] = {}
    for action in parser._actions:  # argparse offers no public listing
        for option in action.option_strings:
            if option.startswith("--"):
                found[option[2:]] = action
    return found


def _convert(action: argparse.Action, key: str, value: Any, source: str) -> Any:
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        if not isinstance(value, bool):
            raise UsageError(source, f"config key {key!r} must be true or false")
        return value
    many = isinstance(action, argparse._AppendAction) or action.nargs in ("*", "+")
    values = value if isinstance(value, list) else [value]
    if not many and isinstance(value, list):
        raise UsageError(source, f"config key {key!r} takes one value, not a list")
    converted = []
    for item in values:
        if isinstance(item, dict | list):
            raise UsageError(source, f"config key {key!r}: bad value {item!r}")
        text = str(item).lower() if isinstance(item, bool) else str(item)
        try:
            result = action.type(text) if callable(action.type) else text
        except AuditError as exc:
            raise UsageError(source, f"config key {key!r}: {exc.what}") from None
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise UsageError(source, f"config key {key!r}: bad value {item!r} ({exc})") from None
        if action.choices is not None and result not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise UsageError(source, f"config key {key!r}: {item!r} is not one of {choices}")
        converted.append(result)
    if isinstance(action, argparse._AppendAction):
        return converted
    if action.nargs in ("*", "+"):
        return converted
    return converted[0]


def config_values(
    parser: argparse.ArgumentParser, section: dict[str, Any], source: str
) -> dict[str, Any]:
    """Validate every key against the parser's options; returns {dest: parsed value}."""
    actions = _actions(parser)
    hidden = {"config", "help", "version", "output"}
    values: dict[str, Any] = {}
    for key, value in section.items():
        action = actions.get(key)
        if action is None or key in hidden:
            valid = ", ".join(sorted(k for k in actions if k not in hidden))
            raise UsageError(
                source, f"unknown key {key!r} in [tool.{SECTION}]", f"valid keys: {valid}"
            )
        values[action.dest] = _convert(action, key, value, source)
    return values
