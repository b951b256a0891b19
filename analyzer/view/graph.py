"""The ModelView: one flat, name-unique view of every node and stored tensor in a model.

Subgraph (If/Loop/Scan) nodes follow their parent node; a name a subgraph defines that is
already taken elsewhere is renamed by its path, so every later stage can key by name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analyzer.core.errors import MalformedGraphError, quote
from analyzer.core.onnxproto import (
    AttributeProto,
    GraphProto,
    ModelProto,
    NodeProto,
    TensorProto,
)
from analyzer.core.results import Shape
from analyzer.read.functions import STORED_KEY, function_key
from analyzer.read.loader import KEEP_ELEMENTS, element_count
from analyzer.read.order import short_path as _short
from analyzer.view.model import ModelView, NodeView, StoredTensor, normalize_domain
from analyzer.view.protoread import (
    attr_value,
    constant_tensor,
    provenance,
    sparse_dims,
    tensor_location,
)
from analyzer.view.shapetable import (
    MAX_RANK,
    ShapeTable,
    TypeShapes,
    ValueShape,
    graph_values,
    value_shape,
)

_GRAPH_TYPES = frozenset({AttributeProto.GRAPH, AttributeProto.GRAPHS})
_NO_ATTRS: Mapping[str, Any] = {}


@dataclass(slots=True)
class _Scope:
    prefix: str
    names: dict[str, str]
    parent: _Scope | None
    carried: frozenset[str] = frozenset()
    """Body inputs that stand for the enclosing node's own inputs (see `_carried`)."""

    def resolve(self, local: str) -> str | None:
        scope: _Scope | None = self
        while scope is not None:
            found = scope.names.get(local)
            if found is not None:
                return found
            scope = scope.parent
        return None


def _carried(inputs: Sequence[str], body: GraphProto) -> dict[str, str]:
    """Loop-carried values the body hands back unchanged, as body input -> outer value.

    Such a value is the same in every iteration: the Loop's own input. tf2onnx passes an RNN's
    weights into the Loop this way; read through, they count where the body uses them, while
    the values the body updates (the hidden state) stay inputs of the body.
    """
    outer = inputs[2:]
    names = Counter(value.name for value in body.input)
    body_in = [value.name for value in body.input[2 : 2 + len(outer)]]
    body_out = [value.name for value in body.output[1 : 1 + len(outer)]]
    return {  # a name the body declares twice is left to define(), which reports it
        name: source
        for name, back, source in zip(body_in, body_out, outer, strict=False)
        if name and name == back and source and names[name] == 1
    }


def _unique(base: str, taken: set[str], suffixes: dict[str, int], space: str = "") -> str:
    """`base`, or `base#N` with the next free N: one counter per base, so a file that gives
    100,000 nodes one name costs linear time, not a rescan from #2 for each."""
    if base not in taken:  # the common case; an absent counter reads as 1 anyway
        return base
    name = base
    count = suffixes.get(space + base, 1)
    while name in taken:
        count += 1
        name = f"{base}#{count}"
    suffixes[space + base] = count
    return name


class _Builder:
    def __init__(self, model: ModelProto) -> None:
        self.model = model
        self.nodes: list[NodeView] = []
        self.stored: dict[str, StoredTensor] = {}
        self.all_stored: dict[str, StoredTensor] = {}
        self.shapes: dict[str, Shape | None] = {}
        self.elem_types: dict[str, int] = {}
        self.used: set[str] = set()
        self.node_names: set[str] = set()
        self.next_suffix: dict[str, int] = {}
        self.subgraph_inputs: set[str] = set()
        self.warnings: list[str] = []
        self.graphs: list[tuple[GraphProto, _Scope]] = []
        self.small: dict[str, TensorProto] = {}

    def define(self, scope: _Scope, local: str, where: str) -> str:
        if local in scope.names:
            raise MalformedGraphError("", f"{_short(where)}tensor {quote(local)} is defined twice")
        name = local
        if name in self.used:
            base = f"{scope.prefix}/{local}" if scope.prefix else local
            name = _unique(base, self.used, self.next_suffix)
        self.used.add(name)
        scope.names[local] = name
        return name

    def outer_inputs(self, node: NodeProto, scope: _Scope, where: str) -> list[str]:
        """A node's inputs resolved through the enclosing scopes too; undefined is an error."""
        inputs = []
        for local in node.input:
            resolved = scope.resolve(local) if local else ""
            if resolved is None:
                label = node.name or node.op_type
                raise MalformedGraphError(
                    "",
                    f"{_short(where)}node {quote(label)} consumes undefined tensor {quote(local)}",
                )
            inputs.append(resolved)
        return inputs

    def unique_node_name(self, prefix: str, name: str, op_type: str, index: int) -> str:
        base = name or f"{op_type}_{index}"
        if prefix:
            base = f"{prefix}/{base}"
        if base in self.node_names:
            base = _unique(base, self.node_names, self.next_suffix, "node:")
        self.node_names.add(base)
        return base

    def set_shape(self, name: str, value: ValueShape) -> None:
        local, shape, elem_type, rank = value
        if rank > MAX_RANK:
            self.warnings.append(
                f"{quote(local)} declares {rank:,} dims (over {MAX_RANK:,}): shape ignored"
            )
        self.shapes[name] = shape
        self.elem_types[name] = elem_type

    def value_shapes(self, table: ShapeTable | None) -> None:
        """Inferred (else declared) shapes of each graph's values, by the graph's own names."""
        if table is None or len(table) != len(self.graphs):
            seen: TypeShapes = {}
            table = [graph_values(graph, seen) for graph, _ in self.graphs]
        for (_, scope), values in zip(self.graphs, table, strict=True):
            for value in values:
                if value[0] in scope.carried:
                    continue  # the outer value's own shape stands
                known = scope.names.get(value[0])
                if known is not None and known not in self.stored:
                    self.set_shape(known, value)

    def add_stored(self, tensor: StoredTensor) -> None:
        self.stored[tensor.name] = tensor
        self.all_stored.setdefault(tensor.key, tensor)
        self.shapes[tensor.name] = tensor.dims
        self.elem_types[tensor.name] = tensor.dtype

    def graph(
        self, graph: GraphProto, scope: _Scope, where: str
    ) -> Iterator[tuple[GraphProto, _Scope, str]]:
        """Add one graph's own names and nodes; yield its subgraphs to visit next."""
        self.graphs.append((graph, scope))
        self.add_initializers(graph, scope, where)
        self.add_inputs(graph, scope, where)
        names, used, nodes = scope.names, self.used, self.nodes
        resolve = names.__getitem__ if "" not in names else None  # "" is an omitted input
        for index, node in enumerate(graph.node):  # sort_graphs() ordered them already
            inputs: tuple[str, ...] | None
            try:  # the common case: every input defined in this very graph, none omitted
                inputs = tuple(map(resolve, node.input)) if resolve else None
            except KeyError:
                inputs = None
            if inputs is None:  # an outer name, an omitted input (""), a graph that defines ""
                inputs = tuple(self.outer_inputs(node, scope, where))
            op_type = node.op_type
            node_name = self.unique_node_name(scope.prefix, node.name, op_type, index)
            outputs = []
            for out in node.output:  # define() inlined for a name new everywhere
                if out and out not in names and out not in used:
                    used.add(out)
                    names[out] = out
                    outputs.append(out)
                else:
                    outputs.append(self.define(scope, out, where) if out else "")
            domain = node.domain
            if domain == "ai.onnx":  # normalize_domain, inlined
                domain = ""
            attrs: Mapping[str, Any] = _NO_ATTRS
            pending: list[tuple[GraphProto, _Scope, str]] = []
            if node.attribute:  # most nodes of a long graph have none
                attrs, pending = self.node_attributes(node, node_name, inputs, outputs, scope)
            nodes.append(
                NodeView(
                    len(nodes),
                    node_name,
                    op_type,
                    domain,
                    inputs,
                    tuple(outputs),
                    attrs,
                    scope.prefix,
                    bool(pending),
                    *(provenance(node) if node.metadata_props else ("", "")),
                )
            )
            yield from pending

    def node_attributes(
        self,
        node: NodeProto,
        node_name: str,
        inputs: Sequence[str],
        outputs: list[str],
        scope: _Scope,
    ) -> tuple[Mapping[str, Any], list[tuple[GraphProto, _Scope, str]]]:
        """A node's attribute values and its subgraphs to visit; a Constant's tensor is stored."""
        constant = node.op_type == "Constant" and normalize_domain(node.domain) == ""
        if constant and outputs and outputs[0]:
            self.add_constant(node, node_name, outputs[0])
        attrs = {a.name: attr_value(a) for a in node.attribute}
        return attrs, self.subgraphs(node, node_name, inputs, scope)

    def add_initializers(self, graph: GraphProto, scope: _Scope, where: str) -> None:
        names, used, small = scope.names, self.used, self.small
        key_prefix = f"{scope.prefix}|"
        for tensor in graph.initializer:
            local = tensor.name  # each read of a protobuf string field builds a new str
            if local not in names and local not in used:  # define() inlined: a new name
                used.add(local)
                names[local] = name = local
            else:
                name = self.define(scope, local, where)
            dims = tuple(tensor.dims)
            elements = element_count(dims)  # the loader checked it
            location = (
                "embedded"
                if tensor.data_location != TensorProto.EXTERNAL
                else tensor_location(tensor)
            )
            stored = StoredTensor(
                key_prefix + local, name, dims, tensor.data_type, "initializer", location, elements
            )
            self.add_stored(stored)
            if elements <= KEEP_ELEMENTS:
                small[name] = tensor
        for sparse in graph.sparse_initializer:
            local = sparse.values.name
            name = self.define(scope, local, where)
            nnz = element_count(sparse.values.dims) + element_count(sparse.indices.dims)
            dims = sparse_dims(sparse, local)
            key = f"{scope.prefix}|{local}"
            self.add_stored(
                StoredTensor(key, name, dims, sparse.values.data_type, "sparse", "embedded", nnz),
            )

    def add_inputs(self, graph: GraphProto, scope: _Scope, where: str) -> None:
        """Graph inputs that are not initializers (nor a Loop's carried weights)."""
        initialized = {t.name for t in graph.initializer} | {
            s.values.name for s in graph.sparse_initializer
        }
        for value in graph.input:
            if value.name in initialized or value.name in scope.carried:
                continue
            name = self.define(scope, value.name, where)
            if scope.parent is not None:
                self.subgraph_inputs.add(name)
            self.set_shape(name, value_shape(value))

    def add_constant(self, node: NodeProto, node_name: str, output: str) -> None:
        """A Constant node's tensor is stored like an initializer."""
        key = next(
            (p.value for p in node.metadata_props if p.key == STORED_KEY),
            f"const|{node_name}",
        )
        constant = constant_tensor(node, output, key)
        if constant is None:
            return
        self.add_stored(constant)
        if constant.elements <= KEEP_ELEMENTS:
            self.small.update(
                (output, a.t)
                for a in node.attribute
                if a.name == "value" and a.type == AttributeProto.TENSOR
            )

    def subgraphs(
        self, node: NodeProto, node_name: str, inputs: Sequence[str], scope: _Scope
    ) -> list[tuple[GraphProto, _Scope, str]]:
        """The node's subgraphs, each with its scope and label, in attribute order."""
        found: list[tuple[GraphProto, _Scope, str]] = []
        for attr in node.attribute:
            if attr.type not in _GRAPH_TYPES:
                continue
            graphs = [attr.g] if attr.type == AttributeProto.GRAPH else list(attr.graphs)
            loop_body = (
                node.op_type == "Loop"
                and normalize_domain(node.domain) == ""
                and attr.name == "body"
            )
            for position, sub in enumerate(graphs):
                label = attr.name if len(graphs) == 1 else f"{attr.name}[{position}]"
                carried = _carried(inputs, sub) if loop_body else {}
                child = _Scope(f"{node_name}/{label}", carried, scope, frozenset(carried))
                found.append((sub, child, f"{child.prefix}: "))
        return found


def build(model: ModelProto, inferred: Callable[[], ShapeTable | None] = lambda: None) -> ModelView:
    """Flatten the prepared model (functions inlined, graphs sorted).

    `inferred` gives the shape table of inference, called only once the nodes are in, so
    inference can run alongside; without a table the file's declared shapes are used.
    """
    builder = _Builder(model)
    root = _Scope("", {}, None)
    _visit_graphs(builder, model.graph, root)
    builder.value_shapes(inferred())
    _function_constants(builder, model)
    producer, consumers = _links(builder.nodes)
    graph_inputs = tuple(
        root.names[i.name]
        for i in model.graph.input
        if i.name in root.names and root.names[i.name] not in builder.stored
    )
    graph_outputs = tuple(root.names.get(o.name, o.name) for o in model.graph.output)
    return ModelView(
        nodes=tuple(builder.nodes),
        stored=builder.stored,
        all_stored=tuple(builder.all_stored.values()),
        producer=producer,
        consumers={k: tuple(v) for k, v in consumers.items()},
        shapes=builder.shapes,
        elem_types=builder.elem_types,
        graph_inputs=graph_inputs,
        graph_outputs=graph_outputs,
        subgraph_inputs=frozenset(builder.subgraph_inputs),
        warnings=tuple(builder.warnings),
        small=builder.small,
    )


def _visit_graphs(builder: _Builder, graph: GraphProto, root: _Scope) -> None:
    """Add the main graph and, depth first in node order, every subgraph."""
    stack: list[Iterator[tuple[GraphProto, _Scope, str]]] = [builder.graph(graph, root, "")]
    while stack:
        try:
            sub, scope, where = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        stack.append(builder.graph(sub, scope, where))


def _function_constants(builder: _Builder, model: ModelProto) -> None:
    """The Constant tensors of function bodies not already stored (a function never called)."""
    for fn in model.functions:
        for index, node in enumerate(fn.node):
            if node.op_type == "Constant" and normalize_domain(node.domain) == "":
                key = function_key(fn, index)
                if key not in builder.all_stored:
                    label = f"{fn.name}/{node.output[0] if node.output else index}"
                    stored = constant_tensor(node, label, key)
                    if stored is not None:
                        builder.all_stored[key] = stored


def _links(nodes: list[NodeView]) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Each value's producing node, and the nodes consuming it."""
    producer: dict[str, int] = {}
    consumers: dict[str, list[int]] = {}
    for node in nodes:
        for out in node.outputs:
            if out:
                producer[out] = node.index
        for name in node.inputs:
            if name:
                consumers.setdefault(name, []).append(node.index)
    return producer, consumers
