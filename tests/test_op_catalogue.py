"""The op catalogue (analyzer/core/ops) decides every op the installed onnx defines and every
op onnxruntime registers (any domain), and every stage reads it: a new onnx or onnxruntime
release that adds an op fails here until someone reads its schema and decides; a visitor that
reads other inputs than its entry describes fails here too."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import onnx
import pytest

from analyzer.core import ops
from analyzer.core.ops import free, generic, layers
from analyzer.count.biasadd import BiasAdds
from analyzer.count.visitors import Context, lookup, registered
from analyzer.rules.dense import dense_shape
from analyzer.runtime import plan
from analyzer.view import standins
from analyzer.view.model import NodeView

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

DECIDED = set(ops.CATALOGUE) | ops.ATTRIBUTE_MODELS
TRAINING = "ai.onnx.preview.training"


@functools.cache
def _ort_schemas() -> tuple[Any, ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_c

    return tuple(ort_c.get_all_operator_schema())


def _ort_ops() -> set[tuple[str, str]]:
    """Every op onnxruntime registers, in every domain: com.microsoft, its layout domains
    (com.microsoft.nchwc, com.ms.internal.nhwc) and the extras it adds to the onnx domain."""
    return {("" if s.domain == "ai.onnx" else s.domain, s.name) for s in _ort_schemas()}


def _schemas(key: tuple[str, str]) -> list[Any]:
    found = [s for s in _ort_schemas() if (s.domain, s.name) == key]
    return found or [s for s in onnx.defs.get_all_schemas() if (s.domain, s.name) == key]


def test_every_onnx_op_is_decided() -> None:
    defined = {(s.domain, s.name) for s in onnx.defs.get_all_schemas_with_history()}
    defined = {("" if d == "ai.onnx" else d, n) for d, n in defined}
    missing = sorted(defined - DECIDED)
    assert not missing, f"ops of onnx {onnx.__version__} nobody decided on: {missing}"


def test_every_onnxruntime_op_is_decided() -> None:
    found = _ort_ops()
    assert {ops.MS, "com.microsoft.nchwc", ""} <= {domain for domain, _ in found}
    missing = sorted(found - DECIDED)
    assert not missing, f"onnxruntime ops nobody decided on: {missing}"


def test_the_catalogue_sources_do_not_overlap() -> None:
    """Weight-free names, layers and generic entries are three lists: an op in two would be
    decided twice, the later silently winning."""
    named, described, generic_ops = (
        set(free.WEIGHT_FREE_NAMES),
        set(layers.LAYERS),
        set(generic.GENERIC_OPS),
    )
    assert not named & described
    assert not named & generic_ops
    assert not described & generic_ops
    assert not ops.ATTRIBUTE_MODELS & set(ops.CATALOGUE)


def test_registrations_are_the_catalogue() -> None:
    """Every op with a visitor is registered and every registered op is catalogued, with a
    visitor: registrations of the dense, conv, generic and layout visitors are derived from
    the catalogue, so only OWN entries could disagree, and this catches them."""
    with_visitor = {k for k, entry in ops.CATALOGUE.items() if entry.visitor != ops.NONE}
    assert set(registered()) == with_visitor
    assert {entry.visitor for entry in ops.CATALOGUE.values()} <= ops.VISITORS


def test_no_op_is_both_weight_free_and_described_with_weights() -> None:
    with_weights = {k for k, entry in ops.CATALOGUE.items() if entry.weights}
    assert not with_weights & ops.WEIGHT_FREE


def test_derived_tables_follow_the_catalogue() -> None:
    """The rules' dense layers, the stand-ins' dense ops and the candidate writer's
    replaceable ops are views of the catalogue, never lists of their own."""
    assert ("", "Gemm") in ops.DENSE_LAYERS and ("", "MatMul") in ops.DENSE_LAYERS
    assert all(entry.family == "dense" for entry in ops.DENSE_LAYERS.values())
    assert set(standins.DENSE) == {
        op for (domain, op) in ops.DENSE_LAYERS if domain == ops.MS and op != "QGemm"
    }
    assert {("", "Gemm"), ("", "MatMul")} == plan.REPLACEABLE
    assert {("", "Conv"), ("", "QLinearConv"), ("", "ConvInteger")} <= set(ops.CONV_LAYERS)
    assert ("", "ConvTranspose") not in ops.CONV_LAYERS
    bias_adds = {k for k, entry in ops.CATALOGUE.items() if entry.bias_add}
    assert bias_adds == {
        ("", "MatMul"),
        (ops.MS, "FusedMatMul"),
        ("", "Conv"),
        ("", "ConvTranspose"),
    }


def test_every_dense_layer_is_read_by_the_rules() -> None:
    """dense_shape reads each catalogue dense layer from its entry: the weight's dims, or the
    packed weight's K and N attributes, transposed by the entry's attribute."""
    for (domain, op), entry in ops.DENSE_LAYERS.items():
        assert entry.data is not None and entry.weight is not None
        inputs = tuple(f"in{p}" for p in range(max(entry.weight, entry.data) + 1))
        attrs = {entry.transpose: 1} if entry.transpose else {}
        attrs.update(
            {entry.size_attrs[0]: 6, entry.size_attrs[1]: 10} if entry.size_attrs[0] else {}
        )
        node = NodeView(0, "n", op, domain, inputs, ("out",), attrs, "", False)
        weight = f"in{entry.weight}"
        view = SimpleNamespace(shape=lambda name, w=weight: (6, 10) if name == w else (1, 6))
        consts = SimpleNamespace(is_const=lambda name, w=weight: name == w)
        got = dense_shape(node, SimpleNamespace(view=view, consts=consts))  # type: ignore[arg-type]
        expected = (10, 6) if entry.transpose and not entry.size_attrs[0] else (6, 10)
        assert got == (f"in{entry.data}", *expected), (domain, op)


@pytest.mark.parametrize(
    ("key", "entry"),
    sorted((k, e) for k, e in ops.CATALOGUE.items() if e.weights or e.quant or e.other),
)
def test_catalogue_positions_exist_in_the_schema(key: tuple[str, str], entry: ops.OpSpec) -> None:
    """A described position must be a real input of the op (catches off-by-one tables); an
    op without a schema of its own is checked against its onnx-domain namesake."""
    schemas = _schemas(key) or _schemas(("", key[1]))
    assert schemas, f"{key} has no schema"
    count = max(len(s.inputs) for s in schemas)
    variadic = any(str(i.option).endswith("Variadic") for s in schemas for i in s.inputs)
    positions = set(entry.weights) | entry.quant | entry.other
    assert variadic or max(positions, default=0) < count, (key, sorted(positions), count)


class _Recorder(Context):
    """A Context that records which inputs a visitor asks for, as (position, role, kind)."""

    def __init__(self) -> None:
        view = SimpleNamespace(
            stored={}, graph_inputs=(), graph_outputs=(), consumers={}, producer={}, shapes={}
        )
        consts = SimpleNamespace(
            is_const=lambda name: True,
            is_table=lambda name: False,
            bias_adds=BiasAdds({}, frozenset()),
        )
        super().__init__(view, consts)  # type: ignore[arg-type]
        self.asked: list[tuple[int, str, str]] = []

    def refs(self, node: NodeView, position: int, role: str, kind: str, **_: Any) -> tuple[()]:
        if position < len(node.inputs):
            self.asked.append((position, role, kind))
        return ()

    def shape(self, name: str) -> None:
        return None

    def values(self, name: str) -> None:
        return None

    def layer(self, node: NodeView, refs: Any, macs: Any = None, notes: Any = ()) -> Any:
        return None


def _checked() -> Iterator[tuple[tuple[str, str], ops.OpSpec, int]]:
    """Entries with a visitor of their own kind and described inputs, with their input count."""
    for key, entry in sorted(ops.CATALOGUE.items()):
        if entry.visitor in (ops.NONE, ops.GENERIC) or not (entry.weights or entry.quant):
            continue
        schemas = _schemas(key)
        if any(str(i.option).endswith("Variadic") for s in schemas for i in s.inputs):
            continue
        described = max([*entry.weights, *entry.quant, *entry.other]) + 1
        yield key, entry, max([described, *(len(s.inputs) for s in schemas)])


@pytest.mark.parametrize(("key", "entry", "count"), list(_checked()))
def test_each_visitor_reads_the_inputs_its_entry_describes(
    key: tuple[str, str], entry: ops.OpSpec, count: int
) -> None:
    """Every input a visitor counts as a parameter, a quantization or an other constant is
    where the catalogue puts it, with its role; every described weight is read."""
    visitor = lookup(*key)
    assert visitor is not None
    node = NodeView(
        0, "n", key[1], key[0], tuple(f"in{p}" for p in range(count)), ("out",), {}, "", False
    )
    ctx = _Recorder()
    list(visitor(node, ctx))
    for position, role, kind in ctx.asked:
        if role == "operand" or kind == "auto":
            continue  # the elementwise rule: any constant operand
        if kind in ("trainable", "non_trainable"):
            assert entry.weights.get(position) == role, (key, position, role)
            assert (position in entry.statistics) == (kind == "non_trainable"), (key, position)
        elif kind == "quantization":
            assert position in entry.quant, (key, position)
        else:
            assert kind == "other" and position in entry.other, (key, position, kind)
    weights_read = {p for p, _, kind in ctx.asked if kind in ("trainable", "non_trainable")}
    assert set(entry.weights) <= weights_read, (key, sorted(set(entry.weights) - weights_read))
