"""Report <-> plain JSON data. Decoding follows the dataclass type hints, so a field added to
results.py round-trips without touching this module."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from analyzer.results import FORMAT_VERSION, Report
from analyzer.symbolic import Poly

_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...] | None:
    names = _FIELDS.get(cls)
    if names is None and dataclasses.is_dataclass(cls):
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


_PRIMITIVES = frozenset({str, int, float, bool, type(None)})


def to_data(obj: Any) -> Any:
    """Dataclasses -> dicts, tuples -> lists, Poly -> int or formula string.

    Dispatches on the exact type first: reports of 100,000 layers go through here.
    """
    kind = type(obj)
    if kind in _PRIMITIVES:
        return obj
    if kind is tuple or kind is list:
        return [to_data(item) for item in obj]
    if kind is Poly:
        return obj.to_json()
    names = _FIELDS.get(kind) or _field_names(kind)
    if names is not None:
        return {name: to_data(getattr(obj, name)) for name in names}
    if isinstance(obj, tuple | list):
        return [to_data(item) for item in obj]
    return obj


def dumps(data: Any) -> str:
    """Readable JSON that stays fast on 100,000-layer reports.

    json's pretty printer is pure Python; the C encoder only writes compact text. So the top
    level is indented by hand and each record of a list (a layer, a finding) is one compact line.
    """
    if not isinstance(data, dict):
        return json.dumps(data, ensure_ascii=False)
    lines = []
    for key, value in data.items():
        head = f"  {json.dumps(key)}: "
        if isinstance(value, list) and value and isinstance(value[0], dict | list):
            items = ",\n".join("    " + json.dumps(v, ensure_ascii=False) for v in value)
            lines.append(f"{head}[\n{items}\n  ]")
        else:
            lines.append(head + json.dumps(value, ensure_ascii=False))
    return "{\n" + ",\n".join(lines) + "\n}"


def _decode(tp: Any, value: Any) -> Any:
    if tp is Poly:
        return Poly.from_json(value)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            if isinstance(option, type) and not dataclasses.is_dataclass(option):
                if isinstance(value, option) and not (option is int and isinstance(value, bool)):
                    return value
                continue
            return _decode(option, value)
        return value
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item) for item in value)
        return tuple(_decode(a, item) for a, item in zip(args, value, strict=True))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = set(value) - names
        if unknown:
            raise ValueError(f"unknown fields for {tp.__name__}: {sorted(unknown)}")
        return tp(**{k: _decode(hints[k], v) for k, v in value.items()})
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def report_from_data(data: dict[str, Any]) -> Report:
    """Inverse of to_data(report); refuses reports from a newer format version."""
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"report format_version {version!r}, this onnx-audit reads {FORMAT_VERSION}"
        )
    report: Report = _decode(Report, data)
    return report
