"""ONX103 untied-embedding-head: the output layer stores its own copy of a vocabulary matrix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from analyzer.core.results import Finding, LayerTally, Payload, Side, WeightRef, payload
from analyzer.core.symbolic import Poly
from analyzer.rules.base import Rule, RuleContext, add_rule
from analyzer.rules.dense import dense_shape
from analyzer.view.model import NodeView

CODE: Final = "ONX103"
MIN_VOCAB: Final = 1000
FLOATS: Final = frozenset({"float", "float16", "bfloat16", "double"})
COPY_NOTE: Final = (
    "shapes alone cannot tell an untied head from a copy of the table: torch's legacy "
    "(TorchScript) exporter writes a tied table a second time, transposed, as the head's weight. "
    "Only the weights can tell; --inspect-weights compares the two tensors' contents"
)


@payload(CODE)
@dataclass(frozen=True, slots=True, kw_only=True)
class UntiedHead(Payload):
    """The embedding table, the head's own weight, and what tying them would save."""

    embedding_node: str
    table: str
    head_weight: str
    vocab: int
    dim: int
    head_shape: tuple[int, ...]
    """The head weight as stored: [D, V] (transposed like the table's copy) or [V, D]."""
    head_bias: int
    stored_transposed: bool
    head_copy: bool | None = None
    """With --inspect-weights: True when the head's values are the table's (transposed, or as
    is: a copy of a tied table), False when they differ (untied); None when not read."""
    head_bytes: int = 0
    """Bytes the head weight takes as stored (the saving when it is a copy; 0 when not read)."""

    def summary(self) -> str:
        return f"{self.dim:,} -> {self.vocab:,}"

    def lines(self) -> tuple[tuple[str, str], ...]:
        v, d = self.vocab, self.dim
        head = ", ".join(map(str, self.head_shape))
        drop_in = (
            "drop-in", "reuse the table as the head's weight (MatMul(h, Transpose(table)), or "
                       "Gemm(h, table, transB=1)); in torch: lm_head.weight = wte.weight",
        )  # fmt: skip
        table = ("table", f"{self.table!r} [{v}, {d}] read by Gather {self.embedding_node!r}")
        if self.head_copy:
            how = "the table transposed" if self.stored_transposed else "the table"
            return (
                table,
                ("head", f"{self.head_weight!r} [{head}] holds {how}, value for value: the "
                         "model is tied, the file stores the table twice"),
                ("saving", f"{v * d:,} stored values ({self.head_bytes:,} bytes), same "
                           "outputs, nothing to retrain; counted once, by ONX203 "
                           "duplicate-weights (no parameter to save here: the model is tied)"),
                drop_in,
            )  # fmt: skip
        if self.head_copy is False:
            return (
                table,
                ("head", f"{self.head_weight!r} [{head}] stored apart, with its own values "
                         f"(read): an untied head, {v * d:,} weights"),
                ("tied", f"one [{v}, {d}] table for both: {v * d:,} fewer weights, same MACs "
                         "(tie them and fine-tune)"),
                drop_in,
            )  # fmt: skip
        return (
            table,
            ("head", f"{self.head_weight!r} [{head}] stored apart: {v * d:,} weights"
                     f"{' (the table transposed)' if self.stored_transposed else ''}"),
            ("tied", f"one [{v}, {d}] table for both: {v * d:,} fewer weights, same MACs"),
            drop_in,
            ("note", COPY_NOTE),
        )  # fmt: skip

    def sides(self) -> tuple[Side, ...]:
        vd = self.vocab * self.dim
        return (
            Side(label="table + head (as is)", weights=2 * vd, bias=self.head_bias,
                 macs=Poly()),
            Side(label="one tied table", weights=vd, bias=self.head_bias, macs=Poly()),
        )  # fmt: skip


def head_copy(ctx: RuleContext, table: str, head: str) -> tuple[bool | None, int]:
    """(whether the head's stored values are the table's, transposed or as is; its bytes), or
    (None, 0) when the weights were not read or either tensor was not."""
    if ctx.weights is None:
        return None, 0
    a, b = ctx.weights.get(table), ctx.weights.get(head)
    if a is None or b is None:
        return None, 0
    same = table in (b.transpose_of, b.duplicate_of) or head in (a.transpose_of, a.duplicate_of)
    return same, b.nbytes


def _tables(layers: Iterator[LayerTally]) -> dict[tuple[int, int], list[tuple[str, str]]]:
    """[V, D] -> (table, Gather node) for every float embedding table with V >= MIN_VOCAB."""
    found: dict[tuple[int, int], list[tuple[str, str]]] = {}
    for layer in layers:
        if layer.op_type != "Gather":
            continue
        for w in layer.weights:
            table = w.role == "embedding" and len(w.shape) == 2 and w.dtype in FLOATS
            if table and w.shape[0] >= MIN_VOCAB:
                found.setdefault((w.shape[0], w.shape[1]), []).append((w.tensor, layer.name))
    return found


def check(ctx: RuleContext) -> Iterator[Finding]:
    tables = _tables(iter(ctx.layers.values()))
    if not tables:
        return
    for node in ctx.view.nodes:
        dense = dense_shape(node, ctx)
        layer = ctx.layers.get(node.name)
        if dense is None or layer is None:
            continue
        _, dim, vocab = dense
        candidates = tables.get((vocab, dim))
        weight = next((w for w in layer.weights if w.role == "weight"), None)
        if not candidates or weight is None:
            continue
        if any(weight.tensor == table for table, _ in candidates):
            ctx.debug.append(f"{CODE} {node.name}: not flagged: tied to {weight.tensor!r}")
            continue
        yield _finding(ctx, node, layer, weight, sorted(candidates)[0], dim=dim, vocab=vocab)


def _finding(
    ctx: RuleContext,
    node: NodeView,
    layer: LayerTally,
    weight: WeightRef,
    embedding: tuple[str, str],
    *,
    dim: int,
    vocab: int,
) -> Finding:
    """The finding for the output layer `node`, untied from the (table, Gather) `embedding`."""
    table, gather = embedding
    transposed = tuple(weight.shape) == (dim, vocab) and dim != vocab
    copy, head_bytes = head_copy(ctx, table, weight.tensor)
    detail = UntiedHead(
        embedding_node=gather,
        table=table,
        head_weight=weight.tensor,
        vocab=vocab,
        dim=dim,
        head_shape=tuple(weight.shape),
        head_bias=sum(w.elements for w in layer.weights if w.role == "bias"),
        stored_transposed=transposed,
        head_copy=copy,
        head_bytes=head_bytes,
    )
    stored = (
        f"stores its own [{dim}, {vocab}] weight {weight.tensor!r} (the shape of the table "
        "transposed)"
        if transposed
        else f"stores its own weight {weight.tensor!r}"
    )
    return Finding(
        code=CODE,
        rule=UNTIED_HEAD.name,
        node=node.name,
        op_type=node.op_type,
        message=_message(node.name, detail, stored),
        confidence="medium" if copy is None else "high",
        params_saved=0 if copy else vocab * dim,  # a copy's values are ONX203's saving
        macs_delta=Poly(),
        detail=detail,
    )


def _message(node: str, detail: UntiedHead, stored: str) -> str:
    v, d, table = detail.vocab, detail.dim, detail.table
    where = f"output layer {node!r} ({d:,} -> {v:,}) {stored} apart from embedding table "
    where += f"{table!r} [{v}, {d}]"
    if detail.head_copy:
        how = "transposed" if detail.stored_transposed else "as is"
        return (
            f"{where}, and its values are the table's, {how}: the model is tied and the file "
            f"stores a duplicate of the table: {v:,}*{d:,} = {v * d:,} values "
            f"({detail.head_bytes:,} bytes) to save, with the same outputs (ONX203 "
            "duplicate-weights counts them; no parameters to save by tying)"
        )
    if detail.head_copy is False:
        return (
            f"{where}, with values of its own: the head is untied; tying them saves "
            f"{v:,}*{d:,} = {v * d:,} parameters (and needs fine-tuning)"
        )
    return (
        f"{where}: tying them saves {v:,}*{d:,} = {v * d:,} parameters. The file may instead "
        f"hold a copy of a tied table: {COPY_NOTE}"
    )


UNTIED_HEAD: Final = add_rule(
    Rule(
        code=CODE,
        name="untied-embedding-head",
        summary=(
            "The output layer stores its own vocabulary matrix beside the input embedding table."
        ),
        what=(
            f"Flags a dense output layer whose weight is [D, V] (or [V, D] with transB) when a "
            f"Gather reads a float embedding table [V, D] with V >= {MIN_VOCAB:,} stored as a "
            "different tensor. A head that reads the table itself (through a Transpose, or "
            "transB) is tied and never flagged. Shapes cannot tell a copy that the exporter "
            "wrote of a tied table from an untied head; with --inspect-weights the two "
            "tensors' contents are compared, and the finding says which it is (a duplicate: "
            "bytes to save, which ONX203 duplicate-weights counts, so this finding's "
            "params_saved is 0 and the saving is never counted twice; untied: parameters to "
            "save by tying)."
        ),
        why=(
            "Language models usually tie the output projection to the input embedding (GPT-2, "
            "BERT, T5): the same V x D numbers serve both, which for a large vocabulary is a "
            "large share of the model. An untied head doubles them for little or no accuracy."
        ),
        example=(
            "tokens -> Gather(wte[50257, 768]) -> ... -> MatMul(lm_head[768, 50257])   "
            "# 2 x 38,597,376 weights"
        ),
        instead=(
            "tokens -> Gather(wte) -> ... -> Gemm(h, wte, transB=1)   # 38,597,376 weights "
            "(tie the weights in the source model and retrain or fine-tune)"
        ),
        check=check,
    )
)
