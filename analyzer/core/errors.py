"""Why a model could not be analysed: one class per kind, each renders as one line.

The CLI prints `onnx-audit: error: <path>: <what> (<hint>)` and exits 2 for any of these.
Messages quote names from hostile files, so `line()` escapes control characters (one line,
always) and callers shorten long names with `quote()`.
"""

from __future__ import annotations

from typing import ClassVar

_CONTROL = {code: f"\\x{code:02x}" for code in (*range(32), *range(127, 160))}
_CONTROL.update({0x2028: "\\u2028", 0x2029: "\\u2029"})
MAX_NAME = 80
"""Longest name quoted in a message; hostile files use megabyte-long names."""


def escape_controls(text: str) -> str:
    """Control characters (terminal escapes, line breaks) as visible `\\xNN` escapes."""
    return text.translate(_CONTROL)


def quote(name: str, limit: int = MAX_NAME) -> str:
    """`repr(name)`, shortened to `limit` characters with an ellipsis."""
    if len(name) > limit:
        return repr(name[:limit]) + "..."
    return repr(name)


class AuditError(Exception):
    """A model that cannot be analysed, or a usage error. Never a bug in onnx-audit."""

    kind: ClassVar[str] = "error"
    default_hint: ClassVar[str] = ""

    def __init__(self, path: str, what: str, hint: str | None = None) -> None:
        self.path = str(path)
        self.what = what
        self.hint = self.default_hint if hint is None else hint
        super().__init__(self.line())

    def __reduce__(self) -> tuple[type[AuditError], tuple[str, str, str]]:
        """Pickle by fields: errors cross the sandbox's process boundary."""
        return (type(self), (self.path, self.what, self.hint))

    def line(self) -> str:
        """The one line shown to the user (without the `onnx-audit: error:` prefix)."""
        text = f"{self.path}: {self.what}" if self.path else self.what
        text = f"{text} ({self.hint})" if self.hint else text
        return text.translate(_CONTROL)


class UsageError(AuditError):
    kind = "usage"


class NotFoundError(AuditError):
    kind = "not-found"
    default_hint = "check the path"


class NotOnnxError(AuditError):
    kind = "not-onnx"
    default_hint = "is this an ONNX ModelProto file?"


class TruncatedError(AuditError):
    kind = "truncated"
    default_hint = "the file ends early; re-export or re-download it"


class CorruptError(AuditError):
    """The protobuf framing is intact but a message inside it does not decode."""

    kind = "corrupt"
    default_hint = "the file is damaged; re-export or re-download it"


class MalformedGraphError(AuditError):
    kind = "malformed-graph"
    default_hint = "the graph breaks the ONNX spec; check it with onnx.checker"


class UnsafeExternalDataError(AuditError):
    kind = "unsafe-external-data"
    default_hint = "external data must be a regular file inside the model's folder"


class MissingExternalDataError(AuditError):
    kind = "missing-external-data"
    default_hint = "copy the weight files next to the model"


class UnsupportedError(AuditError):
    """Valid ONNX that onnx-audit (or protobuf under it) cannot process."""

    kind = "unsupported"


class LimitExceededError(AuditError):
    """A resource cap: memory, time, nesting depth, expansion size."""

    kind = "limit-exceeded"
    default_hint = "raise --max-memory / --timeout if the model is legitimate"


class StrictModeError(AuditError):
    """Raised in strict mode (tests) where normal runs would only warn."""

    kind = "strict"
