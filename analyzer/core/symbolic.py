"""Multiply-accumulate counts that stay exact when a dim is dynamic.

A count is a polynomial over dim names (`3,520·N`), as onnxsim's shape_cost prints it, so a
dynamic batch never turns into a silent 0 or a guessed 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from analyzer.core.records import quick_init

Dim = int | str
"""A tensor dim: a known size, or the name of a dynamic one ("?" when unnamed)."""


@quick_init
@dataclass(frozen=True, slots=True)
class Poly:
    """Sum of terms coeff·sym1·sym2…; terms sorted, zero coefficients dropped."""

    terms: tuple[tuple[tuple[str, ...], int], ...] = ()

    @staticmethod
    def product(dims: Iterable[Dim]) -> Poly:
        coeff = 1
        symbols: list[str] = []
        for dim in dims:
            if isinstance(dim, int):
                coeff *= dim
            else:
                symbols.append(dim)
        if coeff == 0:
            return Poly()
        return Poly(((tuple(sorted(symbols)), coeff),))

    @staticmethod
    def of(value: int) -> Poly:
        return Poly.product((value,))

    @staticmethod
    def total(polys: Iterable[Poly]) -> Poly:
        """The sum of many counts in one pass (a model's MACs over 100,000 layers)."""
        merged: dict[tuple[str, ...], int] = {}
        for poly in polys:
            for symbols, coeff in poly.terms:
                merged[symbols] = merged.get(symbols, 0) + coeff
        return Poly(tuple(sorted((s, c) for s, c in merged.items() if c)))

    def __add__(self, other: Poly) -> Poly:
        return Poly.total((self, other))

    def __mul__(self, other: Poly) -> Poly:
        result = Poly()
        for sym_a, coeff_a in self.terms:
            for sym_b, coeff_b in other.terms:
                term = Poly(((tuple(sorted(sym_a + sym_b)), coeff_a * coeff_b),))
                result = result + term
        return result

    @property
    def value(self) -> int | None:
        """The count when no dim is dynamic, else None."""
        if not self.terms:
            return 0
        if len(self.terms) == 1 and not self.terms[0][0]:
            return self.terms[0][1]
        return None

    def __str__(self) -> str:
        if not self.terms:
            return "0"
        parts = []
        for symbols, coeff in sorted(self.terms, key=lambda t: (-len(t[0]), t[0])):
            names = "·".join(map(_factor, symbols))
            if not symbols:
                parts.append(f"{coeff:,}")
            elif coeff == 1:
                parts.append(names)
            else:
                parts.append(f"{coeff:,}·{names}")
        return " + ".join(parts)

    def to_json(self) -> int | str:
        value = self.value
        return value if value is not None else str(self)

    @staticmethod
    def from_json(data: int | str) -> Poly:
        """Inverse of to_json (and of __str__ for the forms __str__ writes)."""
        if isinstance(data, int):
            return Poly.of(data)
        total = Poly()
        for part in _split(data, " + "):
            dims: list[Dim] = []
            for factor in _split(part, "·"):
                text = factor.replace(",", "")
                if text.lstrip("-").isdigit():
                    dims.append(int(text))
                elif factor.startswith("(") and factor.endswith(")"):
                    dims.append(factor[1:-1])  # a name _factor wrapped
                else:
                    dims.append(factor)
            total = total + Poly.product(dims)
        return total


_NAME = re.compile(r"[\w.?]+")


def _factor(symbol: str) -> str:
    """A dim name as a factor: exporters name dims by expressions (`((H - 1)//2) + 1`), which
    read as part of the sum unless parenthesized."""
    return symbol if _NAME.fullmatch(symbol) else f"({symbol})"


def _split(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside parentheses."""
    parts: list[str] = []
    depth = start = index = 0
    while index < len(text):
        char = text[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif depth == 0 and text.startswith(separator, index):
            parts.append(text[start:index])
            index += len(separator)
            start = index
            continue
        index += 1
    parts.append(text[start:])
    return parts
