"""MAC formulas: readable as sums of products, and read back exactly from JSON."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from analyzer.core.symbolic import Poly


def test_expression_dim_names_are_parenthesized_and_read_back() -> None:
    """torch dynamo names output dims by expressions; one of them holds a top-level ` + `."""
    height, width = "(((H - 1)//2)) + 1", "(((W - 1)//2)) + 1"
    macs = Poly.product([432, height, width, "N"])
    text = str(macs)
    assert text == "432·((((H - 1)//2)) + 1)·((((W - 1)//2)) + 1)·N"
    assert text.count(" + ") == 2  # both inside the names' parentheses: one term, not three
    assert Poly.from_json(text) == macs


def test_plain_names_stay_bare() -> None:
    macs = Poly.product([3200, "N"]) + Poly.of(5) + Poly.product([2, "?", "unk__0"])
    assert str(macs) == "2·?·unk__0 + 3,200·N + 5"  # more factors first
    assert Poly.from_json(str(macs)) == macs


_atom = st.text(alphabet="abHW_?01 +-·/,", min_size=1, max_size=6)
_name = st.recursive(_atom, lambda inner: st.builds(lambda a, b: f"({a}){b}", inner, inner))


@given(st.lists(st.tuples(st.lists(_name, max_size=3), st.integers(1, 10**6)), max_size=3))
def test_any_balanced_names_round_trip(terms: list[tuple[list[str], int]]) -> None:
    names = [n for symbols, _ in terms for n in symbols]
    if any(n.replace(",", "").lstrip("-").isdigit() for n in names):
        return  # a name that is a number reads back as a number
    macs = Poly.total(Poly.product([coeff, *symbols]) for symbols, coeff in terms)
    assert Poly.from_json(macs.to_json()) == macs
