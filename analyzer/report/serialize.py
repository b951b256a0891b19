"""Report <-> plain JSON data. Decoding follows the dataclass type hints, so a field added to
results.py round-trips without touching this module."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Any

import analyzer.rules  # noqa: F401  (each rule module registers its payload class)
from analyzer.core.results import FORMAT_VERSION, PAYLOADS, Finding, Report
from analyzer.core.symbolic import Poly
from analyzer.report.layerjson import layer_lines

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


def _record_fields(obj: Any) -> tuple[str, ...] | None:
    """Field names when to_data turns obj into a dict (a dataclass other than Poly), else None."""
    kind = type(obj)
    return None if kind is Poly else _FIELDS.get(kind) or _field_names(kind)


_CONVERTERS: dict[type, Callable[[Any], Any]] = {Poly: Poly.to_json}


def _converter(kind: type) -> Callable[[Any], Any]:
    """record -> {field: raw value} for one dataclass, built once: one C-level attrgetter
    call per record instead of a getattr loop, and a report holds a record or two per layer."""
    names = _field_names(kind)
    if names is None:
        raise TypeError(f"Object of type {kind.__name__} is not JSON serializable")
    values = attrgetter(*names)
    convert: Callable[[Any], Any] = (
        (lambda obj: dict(zip(names, values(obj), strict=True)))
        if len(names) > 1
        else (lambda obj: {names[0]: values(obj)})
    )
    _CONVERTERS[kind] = convert
    return convert


def _plain(obj: Any) -> Any:
    """The encoder's hook for what it cannot write itself: one level of to_data.

    A record becomes a dict of its raw field values and Poly its to_json(); the C encoder walks
    the tuples, strings and numbers and calls back for nested records, so no plain copy of a
    100,000-layer report is ever built.
    """
    kind = type(obj)
    return (_CONVERTERS.get(kind) or _converter(kind))(obj)


_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False, default=_plain)
"""Built once: json.dumps builds an encoder per call, which shows at one call per layer.
Records are immutable trees, so the circular-reference bookkeeping is skipped."""


def encode(obj: Any) -> str:
    """Compact JSON of to_data(obj) (records or plain data), without building to_data(obj).

    Same text as json.dumps(to_data(obj), ensure_ascii=False): every leaf is still written by
    json's C encoder, which writes tuples as lists itself.
    """
    return _ENCODER.encode(obj)


def _opens_records(value: Any) -> bool:
    """to_data(value) is a non-empty list whose first item is a dict or a list."""
    if not isinstance(value, tuple | list) or not value:
        return False
    return isinstance(value[0], dict | list | tuple) or _record_fields(value[0]) is not None


def _opens_plain(value: Any) -> bool:
    """The same test for a value to_data left alone (a field of a plain dict)."""
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict | list)


def dumps(obj: Any) -> str:
    """Readable JSON of to_data(obj) (a Report, or plain data), fast on 100,000-layer reports.

    json's pretty printer is pure Python; the C encoder only writes compact text. So the top
    level is indented by hand and each record of a list (a layer, a finding) is one compact line,
    encoded straight from the record.
    """
    names = _record_fields(obj)
    if names is not None:
        pairs: Iterable[tuple[Any, Any]] = ((name, getattr(obj, name)) for name in names)
        opens = _opens_records
    elif isinstance(obj, dict):
        pairs, opens = obj.items(), _opens_plain
    else:
        return encode(obj)
    lines = []
    for key, value in pairs:
        head = f"  {json.dumps(key)}: "
        if opens(value):
            items = ",\n    ".join(layer_lines(value, _ENCODER.encode))
            lines.append(f"{head}[\n    {items}\n  ]")
        else:
            lines.append(head + _ENCODER.encode(value))
    return "{\n" + ",\n".join(lines) + "\n}"


def _decode(tp: Any, value: Any) -> Any:
    if tp is Poly:
        return Poly.from_json(value)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return _decode_union(args, value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item) for item in value)
        return tuple(_decode(a, item) for a, item in zip(args, value, strict=True))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _decode_record(tp, value)
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def _decode_union(args: tuple[Any, ...], value: Any) -> Any:
    """The first option of a union that takes the value: a plain type by isinstance (a bool is
    no int), else the first structured one."""
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


def _decode_record(tp: type, value: Any) -> Any:
    """A dataclass from its fields; a finding's `detail` is the payload class of its code."""
    hints = typing.get_type_hints(tp)
    names = {f.name for f in dataclasses.fields(tp)}
    unknown = set(value) - names
    if unknown:
        raise ValueError(f"unknown fields for {tp.__name__}: {sorted(unknown)}")
    if tp is Finding and value.get("detail") is not None:
        hints = {**hints, "detail": _payload_class(value.get("code"))}
    return tp(**{k: _decode(hints[k], v) for k, v in value.items()})


def _payload_class(code: Any) -> type:
    """The finding's payload class, chosen by its rule code (the discriminator)."""
    cls = PAYLOADS.get(code) if isinstance(code, str) else None
    if cls is None:
        raise ValueError(f"finding of unknown rule {code!r}: its detail cannot be read")
    return cls


def report_from_data(data: dict[str, Any]) -> Report:
    """Inverse of to_data(report); refuses reports from a newer format version."""
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"report format_version {version!r}, this onnx-audit reads {FORMAT_VERSION}"
        )
    derived = ("modules",)  # --format json adds the module tree; it is re-derived, not read
    report: Report = _decode(Report, {k: v for k, v in data.items() if k not in derived})
    return report
