"""ONX203 duplicate-weights: a stored tensor that repeats another, as is or transposed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from analyzer.core.results import Finding, Payload, payload
from analyzer.rules.base import Rule, RuleContext, add_rule
from analyzer.rules.weightuse import (
    layer_names,
    layers_text,
    parameter_tensors,
    tensor_finding,
    tensor_text,
)

CODE: Final = "ONX203"
MIN_BYTES: Final = 1024
"""Smaller copies are ignored (shape constants repeat in every export)."""


@payload(CODE)
@dataclass(frozen=True, slots=True, kw_only=True)
class DuplicateWeights(Payload):
    """The copy, the tensor it repeats, and what storing it once would save."""

    tensor: str
    layers: tuple[str, ...]
    dtype: str
    dims: tuple[int, ...]
    original: str
    transposed: bool
    """The copy is the original transposed (2-D), element for element; else byte-identical."""
    elements: int
    nbytes: int

    def subject(self) -> str:
        return self.tensor

    def summary(self) -> str:
        how = "transpose" if self.transposed else "copy"
        return f"{self.tensor!r} {how} of {self.original!r}"

    def lines(self) -> tuple[tuple[str, str], ...]:
        how = (
            f"the transpose of {self.original!r}, element for element (the legacy torch "
            "export writes a tied embedding's head so)"
            if self.transposed
            else f"a byte-identical copy of {self.original!r}"
        )
        use = (
            f"Transpose({self.original!r}), or Gemm(transB=1)"
            if self.transposed
            else repr(self.original)
        )
        return (
            ("tensor", f"{tensor_text(self.tensor, self.dtype, self.dims)} in "
                       f"{layers_text(self.layers)}"),
            ("copy of", how),
            ("saving", f"{self.nbytes:,} bytes and {self.elements:,} stored values: read "
                       f"{use} instead"),
        )  # fmt: skip


def check(ctx: RuleContext) -> Iterator[Finding]:
    for t, mine in parameter_tensors(ctx):
        original = t.duplicate_of or t.transpose_of
        if not original or t.nbytes < MIN_BYTES:
            continue
        layers = layer_names(mine)
        transposed = not t.duplicate_of
        detail = DuplicateWeights(
            tensor=t.name,
            layers=layers,
            dtype=t.dtype,
            dims=t.dims,
            original=original,
            transposed=transposed,
            elements=t.elements,
            nbytes=t.nbytes,
        )
        how = "the transpose of" if transposed else "a byte-identical copy of"
        yield tensor_finding(
            ctx,
            DUPLICATE_WEIGHTS,
            layers=layers,
            message=(
                f"weight {t.name!r} ({layers_text(layers)}) is {how} {original!r}: storing it "
                f"once saves {t.nbytes:,} bytes ({t.elements:,} values)"
            ),
            detail=detail,
            params_saved=t.elements,
        )


DUPLICATE_WEIGHTS: Final = add_rule(
    Rule(
        code=CODE,
        name="duplicate-weights",
        summary="Two stored tensors hold the same values, as is or transposed (--inspect-weights).",
        what=(
            "With --inspect-weights, flags a parameter tensor of 1 KB or more whose contents "
            "equal an earlier stored tensor's (same dtype and dims, same hash, then compared "
            "byte by byte), or are its transpose (2-D, compared element by element). The copy "
            "is flagged, the first one kept."
        ),
        why=(
            "The file stores and the runtime loads the same numbers twice. Torch's legacy "
            "exporter writes a tied embedding's output head as a transposed copy; shared "
            "weights exported per use are copied too. Deduplicating saves the bytes and the "
            "memory, with identical outputs."
        ),
        example=(
            "Gather(wte [50257, 768]) ... MatMul(h, head [768, 50257])   # head = wte.T: "
            "154 MB twice"
        ),
        instead=(
            "Gather(wte) ... Gemm(h, wte, transB=1)   # one stored table (export with the "
            "dynamo exporter, or rewrite the graph to read the first tensor)"
        ),
        check=check,
        reads_weights=True,
    )
)
