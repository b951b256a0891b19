"""The dim expression simplifier: exporters' dim expressions parsed to one normal form.

Exporters name dynamic dims by expressions: torch's dynamo exporter writes
`(((height - 1)//2)) + 1`, sympy prints `floor(height/2 - 1/2) + 1`, onnx's shape inference
invents `unk__17`. `parse` reads them into an `Affine` (a sum of dims and floors), simplifying
what is exact for integer dims:

    floor((L + c)/d) + k  ==  floor((L + c + k·d)/d)
    floor((floor((L + c1)/d1) + c2)/d2)  ==  floor((L + c1 + c2·d1)/(d1·d2))
    ceil(x/d)  ==  floor((x + d - 1)/d)

for an integer-valued L and positive integers d, d1, d2 (the second is floor(floor(z)/n) ==
floor(z/n)). So a stride-2 conv's `floor((height - 1)/2) + 1` is `ceil(height/2)` and two of them
in a row are `ceil(height/4)`. An expression this module cannot parse gives None. `aliases`
names the results for reports.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

TIMES = "*"
"""The table is ASCII (see layout.ELLIPSIS); JSON keeps core.symbolic's `·`."""


@dataclass(frozen=True, slots=True)
class FloorOf:
    """floor((sum coeff·atom + const) / den) over integer-valued atoms, den > 1."""

    terms: tuple[tuple[Atom, int], ...]
    const: int
    den: int


Atom = str | FloorOf
"""A base dim name, or a floor of an integer combination of atoms."""


@dataclass(frozen=True, slots=True)
class Affine:
    """sum coeff·atom + const, rational coefficients."""

    terms: tuple[tuple[Atom, Fraction], ...] = ()
    const: Fraction = Fraction(0)

    @staticmethod
    def build(terms: Mapping[Atom, Fraction], const: Fraction) -> Affine:
        kept = tuple(sorted(((a, c) for a, c in terms.items() if c), key=lambda t: _key(t[0])))
        return Affine(kept, Fraction(const))

    def add(self, other: Affine, sign: int = 1) -> Affine:
        merged: dict[Atom, Fraction] = dict(self.terms)
        for atom, coeff in other.terms:
            merged[atom] = merged.get(atom, Fraction(0)) + sign * coeff
        return Affine.build(merged, self.const + sign * other.const)

    def scale(self, factor: Fraction) -> Affine:
        return Affine.build({a: c * factor for a, c in self.terms}, self.const * factor)

    @property
    def constant(self) -> Fraction | None:
        return None if self.terms else self.const


class _Unsupported(ValueError):
    pass


def _key(atom: Atom) -> tuple[int, str]:
    return (0, atom) if isinstance(atom, str) else (1, repr(atom))


def floor_of(value: Affine) -> Affine:
    """floor(value) for integer-valued atoms, in the normal form above."""
    den = math.lcm(value.const.denominator, *(c.denominator for _, c in value.terms))
    if den == 1:
        return value  # already an integer
    num = value.scale(Fraction(den))
    const = int(num.const)
    if len(num.terms) == 1:
        ((atom, coeff),) = num.terms
        if isinstance(atom, FloorOf) and coeff == 1:  # floor((floor(n/d1) + c)/d2)
            inner = FloorOf(atom.terms, atom.const + const * atom.den, atom.den * den)
            return Affine(((inner, Fraction(1)),))
    terms = tuple((a, int(c)) for a, c in num.terms)
    return Affine(((FloorOf(terms, const, den), Fraction(1)),))


def normal(value: Affine) -> Affine:
    """Fold `m·floor(...) + m·k` into `m·floor(... + k·den)`, for integers m and k."""
    if len(value.terms) == 1 and value.const:
        ((atom, coeff),) = value.terms
        if isinstance(atom, FloorOf) and coeff.denominator == 1 and coeff > 0:
            k = value.const / coeff
            if k.denominator == 1:
                inner = FloorOf(atom.terms, atom.const + int(k) * atom.den, atom.den)
                return Affine(((inner, coeff),))
    return value


_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][\w.:]*)|(//|\*\*|[-+*/(),]))")
_FUNCS = {"floor", "ceil", "Floor", "ceiling", "CeilToInt", "FloorToInt"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                raise _Unsupported(text)
            pos = match.end()
            number, name, op = match.groups()
            if number is not None:
                self.tokens.append(("num", number))
            elif name is not None:
                self.tokens.append(("name", name))
            elif op is not None:
                self.tokens.append(("op", op))
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, op: str) -> bool:
        if self.peek() == ("op", op):
            self.index += 1
            return True
        return False

    def parse(self) -> Affine:
        value = self.sum()
        if self.peek() is not None:
            raise _Unsupported("trailing")
        return value

    def sum(self) -> Affine:
        value = self.product()
        while True:
            if self.take("+"):
                value = value.add(self.product())
            elif self.take("-"):
                value = value.add(self.product(), -1)
            else:
                return value

    def product(self) -> Affine:
        value = self.unary()
        while True:
            if self.take("*"):
                right = self.unary()
                if right.constant is not None:
                    value = value.scale(right.constant)
                elif value.constant is not None:
                    value = right.scale(value.constant)
                else:
                    raise _Unsupported("product of dims")
            elif self.take("//"):
                divisor = self.unary().constant
                if not divisor or divisor <= 0 or divisor.denominator != 1:
                    raise _Unsupported("floor division by a dim")
                value = floor_of(value.scale(1 / divisor))
            elif self.take("/"):
                divisor = self.unary().constant
                if not divisor:
                    raise _Unsupported("division by a dim")
                value = value.scale(1 / divisor)
            else:
                return value

    def unary(self) -> Affine:
        if self.take("-"):
            return self.unary().scale(Fraction(-1))
        if self.take("+"):
            return self.unary()
        return self.atom()

    def atom(self) -> Affine:
        token = self.peek()
        if token is None:
            raise _Unsupported("end")
        self.index += 1
        kind, text = token
        if kind == "num":
            return Affine(const=Fraction(int(text)))
        if kind == "op" and text == "(":
            value = self.sum()
            if not self.take(")"):
                raise _Unsupported("unbalanced")
            return value
        if kind == "name" and self.peek() == ("op", "("):
            if text not in _FUNCS:
                raise _Unsupported(text)
            self.index += 1
            inner = self.sum()
            if not self.take(")"):
                raise _Unsupported("unbalanced")
            if text.lower().startswith("floor"):
                return floor_of(inner)
            return _ceil(inner)
        if kind == "name":
            return Affine(((text, Fraction(1)),))
        raise _Unsupported(text)


def _ceil(value: Affine) -> Affine:
    """ceil(x) == floor(x + (d - 1)/d) when x = n/d for an integer n."""
    den = math.lcm(value.const.denominator, *(c.denominator for _, c in value.terms))
    return floor_of(value.add(Affine(const=Fraction(den - 1, den))))


def parse(text: str) -> Affine | None:
    """The expression, simplified; None when it is not one this module understands."""
    try:
        return normal(_Parser(text).parse())
    except (_Unsupported, ZeroDivisionError, RecursionError):
        return None


def _coeff_text(coeff: Fraction, body: str) -> str:
    if coeff == 1:
        return body
    if coeff.denominator == 1:
        return f"{coeff.numerator}{TIMES}{body}"
    head = body if coeff.numerator == 1 else f"{coeff.numerator}{TIMES}{body}"
    return f"{head}/{coeff.denominator}"


def _sum_text(terms: Iterable[tuple[Atom, Fraction]], const: Fraction) -> str:
    out = ""
    for atom, coeff in terms:
        body = atom_text(atom)
        if not out:
            out = ("-" if coeff < 0 else "") + _coeff_text(abs(coeff), body)
        else:
            out += (" - " if coeff < 0 else " + ") + _coeff_text(abs(coeff), body)
    if const or not out:
        out = (out + (" - " if const < 0 else " + ") + str(abs(const))) if out else str(const)
    return out


def atom_text(atom: Atom) -> str:
    if isinstance(atom, str):
        return atom
    terms = [(a, Fraction(c)) for a, c in atom.terms]
    single = len(terms) == 1 and terms[0][1] == 1
    # floor((L + c)/d) reads best as ceil when c == d - 1, else with the smaller constant
    as_ceil = atom.const - (atom.den - 1)
    func, const = (
        ("ceil", as_ceil)
        if abs(as_ceil) < abs(atom.const) or as_ceil == 0
        else (
            "floor",
            atom.const,
        )
    )
    if const == 0 and single:
        return f"{func}({atom_text(terms[0][0])}/{atom.den})"
    return f"{func}(({_sum_text(terms, Fraction(const))})/{atom.den})"


def text(value: Affine) -> str:
    if len(value.terms) == 1 and not value.const and value.terms[0][1] == 1:
        return atom_text(value.terms[0][0])
    return _sum_text(value.terms, value.const)


def bases(value: Affine) -> list[str]:
    """The base dim names in order of appearance."""
    out: list[str] = []

    def walk(atom: Atom) -> None:
        if isinstance(atom, str):
            if atom not in out:
                out.append(atom)
        else:
            for inner, _ in atom.terms:
                walk(inner)

    for atom, _ in value.terms:
        walk(atom)
    return out


def evaluate(value: Affine, sizes: Mapping[str, int], default: int = 1) -> int:
    def atom_value(atom: Atom) -> int:
        if isinstance(atom, str):
            return sizes.get(atom, default)
        num = sum(c * atom_value(a) for a, c in atom.terms) + atom.const
        return num // atom.den

    total = sum(c * atom_value(a) for a, c in value.terms) + value.const
    return math.floor(total)
