"""What exporters did to the weights, in words: folds and copies the file cannot undo."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from analyzer.core.results import LayerNote, LayerTally, NoteKind
from analyzer.view.model import ModelView

SUMMARIES = {
    NoteKind.FOLDED: (
        "BatchNormalization (or a weight parametrization such as weight_norm) was likely folded "
        "into {count} layer(s) by the exporter ({shown}): their weights were computed at "
        "export (renamed, or named after batchnorm), so what was folded in (BatchNorm's scale, "
        "shift and running statistics; weight_norm's g and v) is not stored and the source "
        "framework counts more parameters than this file holds"
    ),
    NoteKind.IDENTITY: (
        "{count} InstanceNormalization layer(s) have a constant scale of ones and bias of zeros "
        "({shown}), counted as other constants: torch writes these for GroupNorm (whose own "
        "scale and shift follow as Mul and Add) and for InstanceNorm without affine, and does "
        "not count them. An untrained InstanceNorm with affine=True looks the same"
    ),
}
"""Layer notes that many layers share: one line for all of them."""


def _shown(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")


TO_OUTPUT = frozenset(
    {
        "Add", "Mul", "Div", "Cast", "Identity", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
        "Flatten", "Softmax", "LogSoftmax", "Slice", "Gather", "DequantizeLinear",
        "QuantizeLinear", "DynamicQuantizeLinear", "Sigmoid", "Tanh",
    }
)  # fmt: skip
"""Ops between an output head and the graph's output: bias, scale, casts, reshapes, softmax."""
MAX_HEAD_STEPS = 64


def output_heads(view: ModelView, only: Collection[str] | None = None) -> frozenset[str]:
    """Nodes whose output reaches a graph output through TO_OUTPUT ops only: a language model's
    head writes the logits, while an MLP's up-projection of the same shape feeds more layers.

    `only` limits the walk to these node names (`head_candidates`): each walk may take
    MAX_HEAD_STEPS steps, and on a 50,000-node chain of Add and Mul every node would.
    """
    heads: set[str] = set()
    nodes = view.nodes if only is None else [n for n in view.nodes if n.name in only]
    for node in nodes:
        frontier, steps = [o for o in node.outputs if o], 0
        while frontier and steps < MAX_HEAD_STEPS:
            value = frontier.pop()
            steps += 1
            if value in view.graph_outputs:
                heads.add(node.name)
                break
            for index in view.consumers.get(value, ()):
                user = view.nodes[index]
                if user.op_type in TO_OUTPUT:
                    frontier.extend(o for o in user.outputs if o)
    return frozenset(heads)


def _tables(layers: Iterable[LayerTally]) -> dict[tuple[int, ...], list[str]]:
    """Transposed shape of each embedding table (2-D, not square) -> the tables, sorted."""
    by_shape: dict[tuple[int, ...], set[str]] = {}
    for layer in layers:
        if layer.op_type != "Gather":
            continue
        for w in layer.weights:
            if w.role == "embedding" and len(w.shape) == 2 and w.shape[0] != w.shape[1]:
                by_shape.setdefault((w.shape[1], w.shape[0]), set()).add(w.tensor)
    return {shape: sorted(names) for shape, names in by_shape.items()}


def head_candidates(layers: Iterable[LayerTally]) -> frozenset[str]:
    """The layers `exporter_notes` asks `heads` about: a 2-D weight shaped like a transposed
    embedding table. Anything else is never looked up, so its walk is spared."""
    layers = tuple(layers)
    ordered = _tables(layers)
    return frozenset(
        layer.name
        for layer in layers
        if layer.op_type != "Gather"
        and any(w.role == "weight" and w.shape in ordered for w in layer.weights)
    )


def exporter_notes(
    layers: Iterable[LayerTally], heads: frozenset[str] | None = None
) -> tuple[str, ...]:
    """Layer notes worth a line in the report, plus transposed copies of embedding tables in
    the output heads (`heads`; every dense layer when None), quantized ones included."""
    layers = tuple(layers)
    notes = _layer_notes(layers)
    notes += _transposed_copies(layers, heads)
    return tuple(dict.fromkeys(notes))


def _layer_notes(layers: tuple[LayerTally, ...]) -> list[str]:
    """The layers' own notes: one line for each kind many share (SUMMARIES), then the rest."""
    notes: list[str] = []
    for kind, summary in SUMMARIES.items():
        names = [layer.name for layer in layers if any(_kind(n) is kind for n in layer.notes)]
        if names:
            notes.append(summary.format(count=len(names), shown=_shown(names)))
    notes += [
        f"{layer.name}: {note}"
        for layer in layers
        for note in layer.notes
        if _kind(note) not in SUMMARIES
    ]
    return notes


def _kind(note: str) -> NoteKind | None:
    return note.kind if isinstance(note, LayerNote) else None


def _transposed_copies(layers: tuple[LayerTally, ...], heads: frozenset[str] | None) -> list[str]:
    """A note for each head weight shaped like a transposed embedding table."""
    notes: list[str] = []
    ordered = _tables(layers)
    for layer in layers:
        if layer.op_type == "Gather" or (heads is not None and layer.name not in heads):
            continue
        for weight in layer.weights:
            if weight.role != "weight" or len(weight.shape) != 2:
                continue
            # one note per weight: n tables of one shape must not make n*n notes (or work).
            # Tables are not square, so the weight is never one of them.
            candidates = ordered.get(weight.shape)
            if not candidates:
                continue
            table, shape = candidates[0], [weight.shape[1], weight.shape[0]]
            more = len(candidates) - 1
            others = f" (or one of {more:,} other tables)" if more else ""
            notes.append(
                f"{layer.name}: weight {weight.tensor!r} {list(weight.shape)} has the "
                f"transposed shape of embedding table {table!r} {shape}{others}: if the two "
                "are tied in the source model, the exporter stored a transposed copy, "
                f"counted here as stored (+{weight.elements:,} over the framework's count)"
            )
    return notes
