"""What exporters did to the weights, in words: folds and copies the file cannot undo."""

from __future__ import annotations

from collections.abc import Iterable

from analyzer.results import LayerTally


def exporter_notes(layers: Iterable[LayerTally]) -> tuple[str, ...]:
    """Layer notes worth a line in the report, plus transposed copies of embedding tables."""
    layers = tuple(layers)
    notes = [f"{layer.name}: {note}" for layer in layers for note in layer.notes]
    tables = {
        (w.shape, w.tensor)
        for layer in layers
        if layer.op_type == "Gather"
        for w in layer.weights
        if w.role == "embedding" and len(w.shape) == 2
    }
    for layer in layers:
        if layer.op_type not in ("MatMul", "Gemm"):
            continue
        for weight in layer.weights:
            if weight.role != "weight" or len(weight.shape) != 2:
                continue
            for shape, table in sorted(tables):
                transposed = (shape[1], shape[0])
                if weight.tensor != table and weight.shape == transposed and shape[0] != shape[1]:
                    notes.append(
                        f"{layer.name}: weight {weight.tensor!r} {list(weight.shape)} has the "
                        f"transposed shape of embedding table {table!r} {list(shape)}: if the two "
                        "are tied in the source model, the exporter stored a transposed copy, "
                        f"counted here as stored (+{weight.elements:,} over the framework's count)"
                    )
    return tuple(dict.fromkeys(notes))
