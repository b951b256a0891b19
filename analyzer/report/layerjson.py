"""A report's layers as compact JSON lines, written field by field.

`serialize.dumps` writes one line per layer. json's encoder, called once a layer with a hook
that turns each record into a dict, took about 8 us a layer (0.4 s for a 50,000-layer
report); these writers take about 2 us. The text is the encoder's, byte for byte: strings
go through json's own (C) string encoder, ints (checked to be exactly int) are formatted as
json formats them, shapes and other tuples go through the encoder itself, once per distinct
value of a report.
`tests/test_serialize_fast.py` compares both on every sample model and on awkward records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from json.encoder import encode_basestring
from typing import Any

from analyzer.core.results import LayerTally, WeightRef

LAYER_FIELDS = (
    "name", "op_type", "domain", "params", "trainable", "non_trainable", "nbytes", "macs",
    "input_shapes", "output_shapes", "weights", "notes", "module",
)  # fmt: skip
WEIGHT_FIELDS = (
    "tensor", "role", "kind", "shape", "dtype", "elements", "nbytes", "location", "shared", "via",
)  # fmt: skip
"""The fields the writers below spell out, in the records' order: a field added to LayerTally
or WeightRef without a line here sends that record type to the generic encoder instead."""

_WRITES_LAYERS = tuple(f.name for f in fields(LayerTally)) == LAYER_FIELDS
_WRITES_WEIGHTS = tuple(f.name for f in fields(WeightRef)) == WEIGHT_FIELDS
_text = encode_basestring


def layer_lines(layers: Iterable[Any], encode: Callable[[Any], str]) -> Iterator[str]:
    """`encode(layer)` for each layer, the common records written by hand.

    `encode` is the generic encoder: the writers use it for tuples (once per distinct value)
    and for any record or value outside their exact types.
    """
    if not _WRITES_LAYERS:
        yield from map(encode, layers)
        return
    known: dict[tuple[Any, ...], str] = {}

    def tuple_text(value: tuple[Any, ...]) -> str:
        # tuples of ints and strings only reach here (shapes, via, notes): equal values have
        # equal JSON, so one encoding serves them all
        text = known.get(value)
        if text is None:
            text = known[value] = encode(value)
        return text

    def weight_text(ref: Any) -> str:
        if type(ref) is not WeightRef or not _WRITES_WEIGHTS or not _plain_weight(ref):
            return encode(ref)
        return (
            f'{{"tensor": {_text(ref.tensor)}, "role": {_text(ref.role)}, '
            f'"kind": {_text(ref.kind)}, "shape": {tuple_text(ref.shape)}, '
            f'"dtype": {_text(ref.dtype)}, "elements": {ref.elements}, '
            f'"nbytes": {ref.nbytes}, "location": {_text(ref.location)}, '
            f'"shared": {"true" if ref.shared else "false"}, "via": {tuple_text(ref.via)}}}'
        )

    for layer in layers:
        if type(layer) is not LayerTally or not _plain_layer(layer):
            yield encode(layer)
            continue
        macs = layer.macs.to_json()
        yield (
            f'{{"name": {_text(layer.name)}, "op_type": {_text(layer.op_type)}, '
            f'"domain": {_text(layer.domain)}, "params": {layer.params}, '
            f'"trainable": {layer.trainable}, '
            f'"non_trainable": {layer.non_trainable}, '
            f'"nbytes": {layer.nbytes}, '
            f'"macs": {macs if type(macs) is int else encode(macs)}, '
            f'"input_shapes": {tuple_text(layer.input_shapes)}, '
            f'"output_shapes": {tuple_text(layer.output_shapes)}, '
            f'"weights": [{", ".join(map(weight_text, layer.weights))}], '
            f'"notes": {tuple_text(layer.notes)}, "module": {_text(layer.module)}}}'
        )


def _plain_layer(layer: LayerTally) -> bool:
    """The field types the writer spells out (a hand-built record may hold others)."""
    return (
        type(layer.params) is int
        and type(layer.trainable) is int
        and type(layer.non_trainable) is int
        and type(layer.nbytes) is int
        and type(layer.input_shapes) is tuple
        and type(layer.output_shapes) is tuple
        and type(layer.weights) is tuple
        and type(layer.notes) is tuple
        and isinstance(layer.name, str)
        and isinstance(layer.op_type, str)
        and isinstance(layer.domain, str)
        and isinstance(layer.module, str)
    )


def _plain_weight(ref: WeightRef) -> bool:
    return (
        type(ref.elements) is int
        and type(ref.nbytes) is int
        and type(ref.shared) is bool
        and type(ref.shape) is tuple
        and type(ref.via) is tuple
        and isinstance(ref.tensor, str)
        and isinstance(ref.role, str)
        and isinstance(ref.kind, str)
        and isinstance(ref.dtype, str)
        and isinstance(ref.location, str)
    )
