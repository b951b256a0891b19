"""Dim names that are expressions, evaluated once the user fixes the dims they are made of.

Exporters declare output and intermediate dims by formula: torch's dynamo writes
`(((s53 - 1)//2)) + 1`, sympy-based tools `floor(height/2 - 1/2) + 1`, `Min(128, s70)`. onnx's
shape inference keeps a declared name rather than the number it could compute, so after
`--input-shape x=1,8,20` the formula would outlive the fix. Evaluated exactly (fractions) by a
small AST walk: names, integers, + - * / // %, unary minus, floor, ceil, Min, Max; anything
else is not evaluated.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from fractions import Fraction

MAX_LENGTH = 400
"""Longer names are left alone (no real exporter writes them; parsing is bounded)."""
MAX_VALUE = 2**63
_FUNCTIONS = {
    "floor": math.floor,
    "ceil": math.ceil,
    "FloorToInt": math.floor,
    "CeilToInt": math.ceil,
}


class _Unknown(ValueError):
    """The expression uses something that is not fixed or not supported."""


def names(text: str) -> set[str]:
    """The dim names an expression is made of (empty when it does not parse)."""
    tree = _parse(text)
    if tree is None:
        return set()
    return (
        {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        - set(_FUNCTIONS)
        - {
            "Min",
            "Max",
            "min",
            "max",
        }
    )


def evaluate(text: str, sizes: Mapping[str, int]) -> int | None:
    """The value of a dim expression with every name in `sizes`, or None."""
    if text in sizes:
        return sizes[text]
    tree = _parse(text)
    if tree is None:
        return None
    try:
        value = _eval(tree.body, sizes)
    except (_Unknown, ZeroDivisionError, OverflowError, RecursionError):
        return None
    if value.denominator != 1 or not 0 <= value < MAX_VALUE:
        return None
    return int(value)


def _parse(text: str) -> ast.Expression | None:
    if not text or len(text) > MAX_LENGTH:
        return None
    try:
        return ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _eval(node: ast.AST, sizes: Mapping[str, int]) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return Fraction(node.value)
    if isinstance(node, ast.Name):
        if node.id not in sizes:
            raise _Unknown(node.id)
        return Fraction(sizes[node.id])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval(node.operand, sizes)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        return _binary(node.op, _eval(node.left, sizes), _eval(node.right, sizes))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        return _call(node, node.func.id, sizes)
    raise _Unknown(ast.dump(node)[:40])


def _call(node: ast.Call, name: str, sizes: Mapping[str, int]) -> Fraction:
    """floor, ceil and friends of one argument; Min and Max of several."""
    args = [_eval(arg, sizes) for arg in node.args]
    if name in _FUNCTIONS and len(args) == 1:
        return Fraction(_FUNCTIONS[name](args[0]))
    if name in ("Min", "min", "Max", "max") and args:
        return min(args) if name.lower() == "min" else max(args)
    raise _Unknown(ast.dump(node)[:40])


def _binary(op: ast.operator, left: Fraction, right: Fraction) -> Fraction:
    if max(abs(left), abs(right)) > MAX_VALUE:
        raise _Unknown("too large")
    if isinstance(op, ast.Add):
        return left + right
    if isinstance(op, ast.Sub):
        return left - right
    if isinstance(op, ast.Mult):
        return left * right
    if isinstance(op, ast.Div):
        return left / right
    if isinstance(op, ast.FloorDiv):
        return Fraction(math.floor(left / right))
    if isinstance(op, ast.Mod):
        return left - right * math.floor(left / right)
    raise _Unknown(type(op).__name__)


__all__ = ["evaluate", "names"]
