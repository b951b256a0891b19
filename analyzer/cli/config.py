"""`[tool.onnx-audit]` in pyproject.toml: found by walking up from the current directory.

Keys are the long option names (`max-params = "25M"`); values go through the same parsing as
the command line, so a bad value fails the same way. Command-line options win.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analyzer.cli.declare import Option
from analyzer.core.errors import UsageError

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


def config_values(
    options: Sequence[Option], section: dict[str, Any], source: str
) -> dict[str, Any]:
    """Validate every key against the declared options; returns {dest: parsed value}."""
    known = {option.key: option for option in options if option.config}
    values: dict[str, Any] = {}
    for key, value in section.items():
        option = known.get(key)
        if option is None:
            valid = ", ".join(sorted(known))
            raise UsageError(
                source, f"unknown key {key!r} in [tool.{SECTION}]", f"valid keys: {valid}"
            )
        values[option.dest] = option.from_config(value, source)
    return values
