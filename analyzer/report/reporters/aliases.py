"""Short names for symbolic dims, for reports read by people.

Exporters name dynamic dims by expressions: torch's dynamo exporter writes
`(((height - 1)//2)) + 1`, sympy prints `floor(height/2 - 1/2) + 1`, onnx's shape inference
invents `unk__17`. The JSON keeps them as written; the table shows each as a short alias with a
legend (`H1 = ceil(height/2)`), after simplifying what is exact for integer dims (`expressions`):

    floor((L + c)/d) + k  ==  floor((L + c + k·d)/d)
    floor((floor((L + c1)/d1) + c2)/d2)  ==  floor((L + c1 + c2·d1)/(d1·d2))
    ceil(x/d)  ==  floor((x + d - 1)/d)

for an integer-valued L and positive integers d, d1, d2 (the second is floor(floor(z)/n) ==
floor(z/n)). So a stride-2 conv's `floor((height - 1)/2) + 1` is `ceil(height/2)` and two of them
in a row are `ceil(height/4)`. An expression this module cannot parse stays one opaque name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from analyzer.core.symbolic import Dim, Poly
from analyzer.report.reporters.expressions import TIMES, Affine, bases, evaluate, parse, text

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNK = re.compile(r"unk__(\d+)")
SHORT = 8
"""A plain dim name up to this long is shown as it is."""


class Aliases:
    """Display names for a report's dims: plain short names as they are, `unk__7` as `u7`,
    everything else as a letter and a number (`H1`), in order of first use."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self.names: dict[str, str] = {}
        self.by_text: dict[str, str] = {}
        self.legend: list[tuple[str, str]] = []
        self.values: dict[str, Affine | None] = {}
        self.unnamed: list[str] = []
        self.used = set(reserved)
        self.counters: dict[str, int] = {}
        self.order: dict[str, int] = {}
        """Alias -> rank of first use: factors are written in that order (batch·H1·W1)."""

    def name(self, dim: str) -> str:
        alias = self.names.get(dim)
        if alias is None:
            alias = self.names[dim] = self._make(dim)
        return alias

    def _make(self, dim: str) -> str:
        value = parse(dim)
        self.values[dim] = value
        shown = dim if value is None else text(value)
        if shown in self.by_text:  # the same dim written another way
            return self.by_text[shown]
        unk = _UNK.fullmatch(shown)
        if unk and f"u{unk.group(1)}" not in self.used:
            alias = f"u{unk.group(1)}"
            self.unnamed.append(shown)
        elif (_PLAIN.fullmatch(shown) and len(shown) <= SHORT) or shown == "?":
            alias = shown
        else:
            found = bases(value) if value is not None else []
            letter = next((c for c in (found[0] if found else shown) if c.isalpha()), "D")
            letter = letter.upper()
            while True:
                self.counters[letter] = self.counters.get(letter, 0) + 1
                alias = f"{letter}{self.counters[letter]}"
                if alias not in self.used:
                    break
            self.legend.append((alias, shown))
        self.used.add(alias)
        self.by_text[shown] = alias
        self.order.setdefault(alias, len(self.order))
        return alias

    def dim(self, dim: Dim) -> str:
        return str(dim) if isinstance(dim, int) else self.name(dim)

    def shape(self, shape: Iterable[Dim] | None) -> str:
        if shape is None:
            return "?"
        return "(" + ", ".join(self.dim(d) for d in shape) + ")"

    def poly(self, poly: Poly) -> Poly:
        """The count over alias names (two spellings of one dim merge)."""
        return Poly.total(
            Poly.product([coeff, *(self.name(s) for s in symbols)]) for symbols, coeff in poly.terms
        )

    def evaluate(self, poly: Poly, sizes: Mapping[str, int]) -> int:
        """The count with every base dim at its size in `sizes`, or 1."""
        total = 0
        for symbols, coeff in poly.terms:
            product = coeff
            for symbol in symbols:
                if symbol not in self.values:
                    self.name(symbol)
                value = self.values[symbol]
                product *= sizes.get(symbol, 1) if value is None else evaluate(value, sizes)
            total += product
        return total


def _monomial(symbols: Iterable[str], order: Mapping[str, int]) -> str:
    counts: dict[str, int] = {}
    for symbol in sorted(symbols, key=lambda s: (order.get(s, len(order)), s)):
        counts[symbol] = counts.get(symbol, 0) + 1
    return TIMES.join(s if n == 1 else f"{s}^{n}" for s, n in counts.items())


Terms = list[tuple[tuple[str, ...], int]]


def _factored(terms: Terms) -> tuple[list[str], Terms]:
    """The symbols common to every term, and the terms without them."""
    common: list[str] = []
    rest = [list(symbols) for symbols, _ in terms]
    for symbol in sorted(set(rest[0])):
        while all(symbol in r for r in rest):
            common.append(symbol)
            for r in rest:
                r.remove(symbol)
    if common:
        terms = [(tuple(r), c) for r, (_, c) in zip(rest, terms, strict=True)]
    return common, terms


def poly_text(poly: Poly, factor: bool = False, order: Mapping[str, int] | None = None) -> str:
    """A count over short names: `98,304·batch·S + 128·batch·S²`; with factor, symbols common
    to every term are taken out: `batch·(98,304·S + 128·S²)`."""
    if not poly.terms:
        return "0"
    order = order or {}
    terms = sorted(poly.terms, key=lambda t: (-len(t[0]), t[0]))
    common: list[str] = []
    if factor and len(terms) > 1:
        common, terms = _factored(terms)
    parts = []
    for symbols, coeff in terms:
        names = _monomial(symbols, order)
        if not symbols:
            parts.append(f"{coeff:,}")
        elif coeff == 1:
            parts.append(names)
        else:
            parts.append(f"{coeff:,}{TIMES}{names}")
    body = " + ".join(parts)
    return f"{_monomial(common, order)}{TIMES}({body})" if common else body


__all__ = ["Aliases", "evaluate", "parse", "poly_text", "text"]
