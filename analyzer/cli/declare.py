"""One declaration per option: the command line and the config file are both built from it.

argparse reads it to build the parser; `Option.from_config` validates a config value with the
same parser and choices, so a bad value fails the same way wherever it is written.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from analyzer.core.errors import AuditError, UsageError

Kind = Literal["flag", "one", "many"]


class ArgumentGroup(Protocol):
    """What an argparse parser or argument group offers (argparse names its group private)."""

    def add_argument(self, *flags: str, **options: Any) -> Any: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Option:
    """One command-line option; its long name (without --) is also its config key."""

    flags: tuple[str, ...]
    group: str
    """Its heading in --help; "" for the parser's own options."""
    help: str
    kind: Kind = "one"
    """flag: true when given; one: a value; many: repeatable, each occurrence parsed."""
    parse: Callable[[str], Any] | None = None
    choices: Callable[[], Sequence[str]] | None = None
    metavar: str | None = None
    config: bool = True
    """False for options that make no sense in a shared file (--output, --config)."""
    commands: frozenset[str] = frozenset({"check", "diff", "verify"})

    @property
    def key(self) -> str:
        return next(f for f in self.flags if f.startswith("--")).removeprefix("--")

    @property
    def dest(self) -> str:
        return self.key.replace("-", "_")

    def add_to(self, group: ArgumentGroup) -> None:
        """Add this option to an argparse group (defaults None: the config may fill in)."""
        if self.kind == "flag":
            group.add_argument(*self.flags, action="store_true", help=self.help)
            return
        extra: dict[str, Any] = {"help": self.help}
        if self.parse is not None:
            extra["type"] = self.parse
        if self.choices is not None:
            extra["choices"] = self.choices()
        if self.metavar is not None:
            extra["metavar"] = self.metavar
        if self.kind == "many":
            extra["action"] = "append"
        group.add_argument(*self.flags, **extra)

    def from_config(self, value: Any, source: str) -> Any:
        """A config value parsed like the command-line text; UsageError naming the key."""
        if self.kind == "flag":
            if not isinstance(value, bool):
                raise UsageError(source, f"config key {self.key!r} must be true or false")
            return value
        if self.kind == "one" and isinstance(value, list):
            raise UsageError(source, f"config key {self.key!r} takes one value, not a list")
        converted = [
            self._one(item, source) for item in (value if isinstance(value, list) else [value])
        ]
        return converted if self.kind == "many" else converted[0]

    def _one(self, item: Any, source: str) -> Any:
        if isinstance(item, dict | list):
            raise UsageError(source, f"config key {self.key!r}: bad value {item!r}")
        text = str(item).lower() if isinstance(item, bool) else str(item)
        try:
            result = self.parse(text) if self.parse is not None else text
        except AuditError as exc:
            raise UsageError(source, f"config key {self.key!r}: {exc.what}") from None
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise UsageError(
                source, f"config key {self.key!r}: bad value {item!r} ({exc})"
            ) from None
        choices = self.choices() if self.choices is not None else None
        if choices is not None and result not in choices:
            listed = ", ".join(map(str, choices))
            raise UsageError(source, f"config key {self.key!r}: {item!r} is not one of {listed}")
        return result
