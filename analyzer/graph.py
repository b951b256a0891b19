"""The ModelView: one flat, name-unique view of every node and stored tensor in a model.

Subgraph (If/Loop/Scan) nodes follow their parent node; a name a subgraph defines that is
already taken elsewhere is renamed by its path, so every later stage can key by name.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from onnx import AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, TypeProto

from analyzer import dtypes
from analyzer.errors import MalformedGraphError
from analyzer.functions import STORED_KEY, function_key
from analyzer.loader import EMBEDDED, element_count
from analyzer.protowalk import iter_graphs
from analyzer.results import Shape

_GRAPH_TYPES = frozenset({AttributeProto.GRAPH, AttributeProto.GRAPHS})
_NO_ATTRS: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class StoredTensor:
    """A constant whose elements the file stores: initializer or Constant node."""

    key: str
    name: str
    dims: tuple[int, ...]
    dtype: int
    origin: str
    location: str
    elements: int

    @property
    def nbytes(self) -> int:
        return dtypes.nbytes(self.dtype, self.elements)

    @property
    def dtype_name(self) -> str:
        return dtypes.dtype_name(self.dtype)


@dataclass(frozen=True, slots=True)
class NodeView:
    index: int
    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any]
    scope: str
    has_subgraphs: bool

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def input(self, index: int) -> str:
        return self.inputs[index] if index < len(self.inputs) else ""


@dataclass(frozen=True, slots=True)
class ModelView:
    nodes: tuple[NodeView, ...]
    stored: Mapping[str, StoredTensor]
    """Global value name -> stored tensor it holds."""
    all_stored: tuple[StoredTensor, ...]
    """Every distinct stored tensor, used or not, in file order."""
    producer: Mapping[str, int]
    consumers: Mapping[str, tuple[int, ...]]
    shapes: Mapping[str, Shape | None]
    elem_types: Mapping[str, int]
    graph_inputs: tuple[str, ...]
    graph_outputs: tuple[str, ...]
    subgraph_inputs: frozenset[str]
    warnings: tuple[str, ...]

    def shape(self, name: str) -> Shape | None:
        return self.shapes.get(name)


def normalize_domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


def _attr_value(attr: AttributeProto) -> Any:
    kind = attr.type
    if kind == AttributeProto.INT:
        return attr.i
    if kind == AttributeProto.FLOAT:
        return attr.f
    if kind == AttributeProto.STRING:
        return attr.s.decode("utf-8", "replace")
    if kind == AttributeProto.INTS:
        return tuple(attr.ints)
    if kind == AttributeProto.FLOATS:
        return tuple(attr.floats)
    if kind == AttributeProto.STRINGS:
        return tuple(s.decode("utf-8", "replace") for s in attr.strings)
    return None  # tensors and graphs are handled as stored tensors and subgraphs


def _shape_of(type_proto: TypeProto) -> Shape | None:
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    dims: list[int | str] = []
    for dim in type_proto.tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value >= 0:
            dims.append(dim.dim_value)
        elif dim.HasField("dim_param") and dim.dim_param:
            dims.append(dim.dim_param)
        else:
            dims.append("?")
    return tuple(dims)


def _location(tensor: TensorProto) -> str:
    if tensor.data_location != TensorProto.EXTERNAL:
        return "embedded"
    info = {e.key: e.value for e in tensor.external_data}
    where = info.get("location", "")
    return "embedded" if where == EMBEDDED else f"external:{where}"


def _check_dims(tensor: TensorProto, name: str) -> tuple[int, ...]:
    dims = tuple(int(d) for d in tensor.dims)
    if any(d < 0 for d in dims):
        raise MalformedGraphError("", f"tensor {name!r} declares a negative dim {list(dims)}")
    return dims


def _check_payload(tensor: TensorProto, name: str, elements: int) -> None:
    """A kept (small) tensor must hold exactly as many values as its dims say."""
    if tensor.data_location == TensorProto.EXTERNAL:
        info = {e.key: e.value for e in tensor.external_data}
        length = info.get("length")
        expected = dtypes.nbytes(tensor.data_type, elements)
        if length is not None and expected and length.isdigit() and int(length) != expected:
            raise MalformedGraphError(
                "", f"tensor {name!r} stores {int(length):,} bytes where its dims need {expected:,}"
            )
        return
    if tensor.HasField("raw_data"):
        got, expected = len(tensor.raw_data), dtypes.nbytes(tensor.data_type, elements)
    else:
        fields = (
            "float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data",
        )  # fmt: skip
        got = sum(len(getattr(tensor, f)) for f in fields)
        expected = elements
        if tensor.data_type in (TensorProto.COMPLEX64, TensorProto.COMPLEX128):
            expected *= 2
        if dtypes.bits(tensor.data_type) == 4 and tensor.data_type != TensorProto.STRING:
            expected = (elements + 1) // 2
        if got == 0 and elements == 0:
            return
    if tensor.data_type == TensorProto.STRING or not expected:
        return
    if got != expected:
        raise MalformedGraphError(
            "", f"tensor {name!r} holds {got:,} values/bytes where its dims need {expected:,}"
        )


def _constant_tensor(node: NodeProto, name: str, key: str) -> StoredTensor | None:
    for attr in node.attribute:
        if attr.name == "value" and attr.type == AttributeProto.TENSOR:
            dims = _check_dims(attr.t, name)
            elements = element_count(dims)
            _check_payload(attr.t, name, elements)
            dtype = attr.t.data_type
            location = _location(attr.t)
            return StoredTensor(key, name, dims, dtype, "constant", location, elements)
        if attr.name == "sparse_value":
            sparse = attr.sparse_tensor
            dims = tuple(int(d) for d in sparse.dims)
            nnz = element_count(sparse.values.dims)
            dtype = sparse.values.data_type
            return StoredTensor(key, name, dims, dtype, "constant", "embedded", nnz)
        scalar = {"value_float": TensorProto.FLOAT, "value_int": TensorProto.INT64}
        if attr.name in scalar:
            return StoredTensor(key, name, (), scalar[attr.name], "constant", "embedded", 1)
        lists = {
            "value_floats": (TensorProto.FLOAT, len(attr.floats)),
            "value_ints": (TensorProto.INT64, len(attr.ints)),
            "value_strings": (TensorProto.STRING, len(attr.strings)),
        }
        if attr.name in lists:
            dtype, count = lists[attr.name]
            return StoredTensor(key, name, (count,), dtype, "constant", "embedded", count)
        if attr.name == "value_string":
            return StoredTensor(key, name, (), TensorProto.STRING, "constant", "embedded", 1)
    return None


def topological_order(nodes: list[NodeProto], where: str) -> list[NodeProto]:
    """Keep file order when it is valid; otherwise sort (Kahn) and reject cycles."""
    produced: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for out in node.output:
            if out:
                produced.setdefault(out, index)
    seen: set[str] = set()
    for node in nodes:
        if any(name in produced and name not in seen for name in _all_inputs(node)):
            break
        seen.update(node.output)
    else:
        return nodes
    needs = [[produced[n] for n in set(_all_inputs(node)) if n in produced] for node in nodes]
    waiting = [len(sources) for sources in needs]
    users: list[list[int]] = [[] for _ in nodes]
    for index, sources in enumerate(needs):
        for source in sources:
            if source == index:
                label = nodes[index].name or nodes[index].op_type
                raise MalformedGraphError("", f"{where}node {label!r} consumes its own output")
            users[source].append(index)
    ready = deque(i for i, count in enumerate(waiting) if count == 0)
    order: list[int] = []
    while ready:
        index = ready.popleft()
        order.append(index)
        for user in users[index]:
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    if len(order) != len(nodes):
        stuck = next(nodes[i] for i, count in enumerate(waiting) if count)
        label = stuck.name or stuck.op_type
        raise MalformedGraphError("", f"{where}the graph has a cycle through node {label!r}")
    return [nodes[i] for i in order]


def sort_graphs(model: ModelProto) -> None:
    """Put every graph's nodes in topological order, in place, before shape inference.

    onnx infers in file order, so a valid but unsorted file would lose shapes (and MACs).
    """
    for graph in iter_graphs(model):
        nodes = list(graph.node)
        ordered = topological_order(nodes, "")
        if ordered is not nodes:
            del graph.node[:]
            graph.node.extend(ordered)


def _all_inputs(node: NodeProto) -> Iterator[str]:
    """A node's inputs plus the outer-scope names its subgraphs read."""
    yield from (n for n in node.input if n)
    if not node.attribute:
        return
    stack = [
        g for a in node.attribute for g in ([a.g] if a.type == AttributeProto.GRAPH else a.graphs)
    ]
    while stack:
        graph = stack.pop()
        local = {i.name for i in graph.input} | {t.name for t in graph.initializer}
        for inner in graph.node:
            local.update(inner.output)
        for inner in graph.node:
            yield from (n for n in inner.input if n and n not in local)
            for attr in inner.attribute:
                if attr.type == AttributeProto.GRAPH:
                    stack.append(attr.g)
                elif attr.type == AttributeProto.GRAPHS:
                    stack.extend(attr.graphs)
        yield from (o.name for o in graph.output if o.name not in local)


@dataclass(slots=True)
class _Scope:
    prefix: str
    names: dict[str, str]
    parent: _Scope | None

    def resolve(self, local: str) -> str | None:
        scope: _Scope | None = self
        while scope is not None:
            found = scope.names.get(local)
            if found is not None:
                return found
            scope = scope.parent
        return None


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
        self.subgraph_inputs: set[str] = set()
        self.warnings: list[str] = []

    def define(self, scope: _Scope, local: str, where: str) -> str:
        if local in scope.names:
            raise MalformedGraphError("", f"{where}tensor {local!r} is defined twice")
        name = local
        if name in self.used:
            base = f"{scope.prefix}/{local}" if scope.prefix else local
            name, count = base, 1
            while name in self.used:
                count += 1
                name = f"{base}#{count}"
        self.used.add(name)
        scope.names[local] = name
        return name

    def unique_node_name(self, prefix: str, node: NodeProto, index: int) -> str:
        base = node.name or f"{node.op_type}_{index}"
        base = f"{prefix}/{base}" if prefix else base
        name, count = base, 1
        while name in self.node_names:
            count += 1
            name = f"{base}#{count}"
        self.node_names.add(name)
        return name

    def add_stored(self, scope: _Scope, tensor: StoredTensor) -> None:
        self.stored[tensor.name] = tensor
        self.all_stored.setdefault(tensor.key, tensor)
        self.shapes[tensor.name] = tensor.dims
        self.elem_types[tensor.name] = tensor.dtype
        _ = scope

    def graph(
        self, graph: GraphProto, scope: _Scope, where: str
    ) -> Iterator[tuple[GraphProto, _Scope, str]]:
        """Add one graph's own names and nodes; yield its subgraphs to visit next."""
        for tensor in graph.initializer:
            name = self.define(scope, tensor.name, where)
            dims = _check_dims(tensor, tensor.name)
            elements = element_count(dims)
            _check_payload(tensor, tensor.name, elements)
            key = f"{scope.prefix}|{tensor.name}"
            stored = StoredTensor(
                key, name, dims, tensor.data_type, "initializer", _location(tensor), elements
            )
            self.add_stored(scope, stored)
        for sparse in graph.sparse_initializer:
            local = sparse.values.name
            name = self.define(scope, local, where)
            nnz = element_count(sparse.values.dims) + element_count(sparse.indices.dims)
            dims = tuple(int(d) for d in sparse.dims)
            key = f"{scope.prefix}|{local}"
            self.add_stored(
                scope,
                StoredTensor(key, name, dims, sparse.values.data_type, "sparse", "embedded", nnz),
            )
        initialized = {t.name for t in graph.initializer} | {
            s.values.name for s in graph.sparse_initializer
        }
        for value in graph.input:
            if value.name in initialized:
                continue
            name = self.define(scope, value.name, where)
            if scope.parent is not None:
                self.subgraph_inputs.add(name)
            self.shapes[name] = _shape_of(value.type)
            self.elem_types[name] = value.type.tensor_type.elem_type
        node_list = topological_order(list(graph.node), where)
        pending: list[tuple[GraphProto, _Scope, str]] = []
        for index, node in enumerate(node_list):
            inputs = []
            for local in node.input:
                if not local:
                    inputs.append("")
                    continue
                resolved = scope.resolve(local)
                if resolved is None:
                    label = node.name or node.op_type
                    raise MalformedGraphError(
                        "", f"{where}node {label!r} consumes undefined tensor {local!r}"
                    )
                inputs.append(resolved)
            node_name = self.unique_node_name(scope.prefix, node, index)
            outputs = [self.define(scope, out, where) if out else "" for out in node.output]
            domain = normalize_domain(node.domain)
            if node.op_type == "Constant" and domain == "" and outputs and outputs[0]:
                key = next(
                    (p.value for p in node.metadata_props if p.key == STORED_KEY),
                    f"const|{node_name}",
                )
                constant = _constant_tensor(node, outputs[0], key)
                if constant is not None:
                    self.add_stored(scope, constant)
            attributes = node.attribute
            attrs = {a.name: _attr_value(a) for a in attributes} if attributes else _NO_ATTRS
            has_sub = False
            for attr in attributes:
                if attr.type not in _GRAPH_TYPES:
                    continue
                graphs = [attr.g] if attr.type == AttributeProto.GRAPH else list(attr.graphs)
                for position, sub in enumerate(graphs):
                    has_sub = True
                    label = attr.name if len(graphs) == 1 else f"{attr.name}[{position}]"
                    child = _Scope(f"{node_name}/{label}", {}, scope)
                    pending.append((sub, child, f"{child.prefix}: "))
            self.nodes.append(
                NodeView(
                    len(self.nodes),
                    node_name,
                    node.op_type,
                    domain,
                    tuple(inputs),
                    tuple(outputs),
                    attrs,
                    scope.prefix,
                    has_sub,
                )
            )
            if pending:
                yield from pending
                pending.clear()
        for value in [*graph.value_info, *graph.output]:
            known = scope.names.get(value.name)
            if known is not None and known not in self.stored:
                self.shapes[known] = _shape_of(value.type)
                self.elem_types[known] = value.type.tensor_type.elem_type


def build(model: ModelProto) -> ModelView:
    """Flatten the (function-inlined, shape-inferred) model into a ModelView."""
    builder = _Builder(model)
    root = _Scope("", {}, None)
    stack: list[Iterator[tuple[GraphProto, _Scope, str]]] = [builder.graph(model.graph, root, "")]
    while stack:
        try:
            sub, scope, where = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        stack.append(builder.graph(sub, scope, where))
    for fn in model.functions:
        for index, node in enumerate(fn.node):
            if node.op_type == "Constant" and normalize_domain(node.domain) == "":
                key = function_key(fn, index)
                if key not in builder.all_stored:
                    label = f"{fn.name}/{node.output[0] if node.output else index}"
                    stored = _constant_tensor(node, label, key)
                    if stored is not None:
                        builder.all_stored[key] = stored
    producer: dict[str, int] = {}
    consumers: dict[str, list[int]] = {}
    for node in builder.nodes:
        for out in node.outputs:
            if out:
                producer[out] = node.index
        for name in node.inputs:
            if name:
                consumers.setdefault(name, []).append(node.index)
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
    )
