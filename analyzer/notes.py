"""What exporters did to the weights, in words: folds and copies the file cannot undo."""

from __future__ import annotations

from collections.abc import Iterable

from analyzer.results import LayerTally
from analyzer.visitors.conv import FOLDED_NOTE


def exporter_notes(layers: Iterable[LayerTally]) -> tuple[str, ...]:
    """Layer notes worth a line in the report, plus transposed copies of embedding tables."""
    layers = tuple(layers)
    folded = [layer.name for layer in layers if any(n.startswith(FOLDED_NOTE) for n in layer.notes)]
    notes = [
        f"{layer.name}: {note}"
        for layer in layers
        for note in layer.notes
        if not note.startswith(FOLDED_NOTE)
    ]
    if folded:
        shown = ", ".join(folded[:5]) + (f", ... ({len(folded)} in all)" if len(folded) > 5 else "")
        notes.insert(
            0,
            f"BatchNormalization was likely folded into {len(folded)} conv layer(s) by the "
            f"exporter ({shown}): their weights were computed at export (renamed, or named after "
            "batchnorm), so the BatchNorm scale, shift and running statistics are not stored and "
            "the source framework counts more parameters than this file holds",
        )
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
