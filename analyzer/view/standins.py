"""Stand-ins for contrib ops during shape inference.

onnx knows no com.microsoft schema, so inference stops at the first fused op onnxruntime's
optimizer or quantizer wrote (SkipLayerNormalization, Attention, MatMulNBits...) and every
shape, and so every MAC count, after it is lost. Inference only needs each op's output shape:
here each such node is replaced by standard ops that give the same output 0 (an Identity, a
Gather, a MatMul against a weight declared by shape only, never allocated). Only the shapes
are read back, by value name, so the stand-ins never reach the analysis itself. Runs in the
inference child, on its own copy of the model.
"""

from __future__ import annotations

from collections.abc import Mapping

from analyzer.core import ops
from analyzer.core.onnxproto import (
    AttributeProto,
    GraphProto,
    ModelProto,
    NodeProto,
    TensorProto,
)
from analyzer.core.ops import OpSpec
from analyzer.core.protohelp import attribute_value, make_node, make_tensor_value_info

MS = "com.microsoft"
NCHWC = "com.microsoft.nchwc"
NHWC = "com.ms.internal.nhwc"
ONNX_EXTRAS = frozenset({"SimplifiedLayerNormalization"})
"""Ops onnxruntime registers in the onnx domain, which onnx's inference does not know."""
NCHWC_STANDARD = frozenset({"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"})
"""Blocked-layout ops whose standard op, with the same attributes, gives the output shape."""
NCHWC_ONLY_ATTRIBUTES = frozenset({"activation", "activation_params"})
SAME_AS_INPUT = frozenset(
    {
        "SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "BiasGelu", "FastGelu",
        "BiasAdd", "QuickGelu", "Gelu", "BiasDropout", "BiasSoftmax", "GroupNorm",
        "SkipGroupNorm", "RotaryEmbedding", "Attention", "DecoderMaskedSelfAttention",
        "MultiHeadAttention", "DecoderMaskedMultiHeadAttention", "GatedRMSNorm",
        "BranchwiseRMSNorm", "ScaledSiLU", "QLinearSoftmax", "QLinearSigmoid",
        "QLinearLeakyRelu",
    }
)  # fmt: skip
"""Output 0 has input 0's shape and type (for attention: [batch, sequence, hidden] when the
value width equals the input's, as in every exported BERT and GPT)."""
FLOAT_OF_INPUT = frozenset({"QAttention", "DequantizeWithOrder"})
"""Output 0 has input 0's shape as float."""
DENSE: Mapping[str, OpSpec] = {
    op: entry for (domain, op), entry in ops.DENSE_LAYERS.items() if domain == MS and op != "QGemm"
}
"""The op catalogue's com.microsoft dense ops (QGemm has a stand-in of its own): output =
input[..., :K] @ [K, N], the weight's dims read as stored (transposed when its `transpose`
attribute is set) or, packed, from its K and N attributes."""


def stand_in(model: ModelProto) -> int:
    """Replace contrib nodes of the main graph by shape-equivalent standard ops; returns how
    many were replaced."""
    graph = model.graph
    shapes: dict[str, list[int]] | None = None  # read at the first foreign node: most have none
    replaced = 0
    nodes: list[NodeProto] = []
    for index, node in enumerate(graph.node):
        foreign = node.domain in (MS, NCHWC) or (
            node.domain in ("", "ai.onnx") and node.op_type in ONNX_EXTRAS
        )
        if not foreign or not node.output:
            nodes.append(node)
            continue
        if shapes is None:
            shapes = _declared_shapes(graph)
        new = _replacement(node, index, graph, shapes)
        if new is None:
            nodes.append(node)
            continue
        nodes.extend(new)
        replaced += 1
    if replaced:
        del graph.node[:]
        graph.node.extend(nodes)
    return replaced


def _declared_shapes(graph: GraphProto) -> dict[str, list[int]]:
    """Initializer dims by name: the weights a replacement's shape depends on."""
    return {t.name: list(t.dims) for t in graph.initializer}


def _fake_weight(graph: GraphProto, name: str, dims: list[int]) -> str:
    """A graph input of this shape: inference reads its shape; no values exist anywhere."""
    graph.input.append(make_tensor_value_info(name, TensorProto.FLOAT, dims))
    return name


def _replacement(
    node: NodeProto, index: int, graph: GraphProto, shapes: dict[str, list[int]]
) -> list[NodeProto] | None:
    op, out, first = node.op_type, node.output[0], node.input[0] if node.input else ""
    if not first:
        return None
    if node.domain == NCHWC:
        return _nchwc(node)
    if op in SAME_AS_INPUT or op in ONNX_EXTRAS:
        return [make_node("Identity", [first], [out])]
    if op in FLOAT_OF_INPUT:
        return [make_node("Cast", [first], [out], to=TensorProto.FLOAT)]
    if op in QLINEAR:
        return _qlinear(node, first, out)
    if op == "QGemm" and len(node.input) > 3:
        return _qgemm(node, index, graph, shapes)
    if op in ("EmbedLayerNormalization", "QEmbedLayerNormalization") and len(node.input) > 2:
        return _embedding(node, index, graph, shapes)
    if op in DENSE:
        return _dense(node, index, graph, shapes)
    if op == "DynamicQuantizeLSTM" and len(node.input) > 2:
        return _lstm(node, index, graph, shapes)
    return None


QLINEAR = frozenset(
    {
        "QLinearAdd",
        "QLinearMul",
        "QLinearConcat",
        "QLinearWhere",
        "QLinearAveragePool",
        "QLinearGlobalAveragePool",
    }
)
"""Quantized ops whose standard op reads the quantized inputs (the shape is what counts)."""


def _qlinear(node: NodeProto, first: str, out: str) -> list[NodeProto] | None:
    op = node.op_type
    if op in ("QLinearAdd", "QLinearMul") and len(node.input) > 3:
        standard = "Add" if op == "QLinearAdd" else "Mul"
        return [make_node(standard, [first, node.input[3]], [out])]
    if op == "QLinearConcat" and len(node.input) > 2:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        return [make_node("Concat", list(node.input[2::3]), [out], axis=axis)]
    if op == "QLinearWhere" and len(node.input) > 4:
        return [make_node("Where", [first, node.input[1], node.input[4]], [out])]
    if op in ("QLinearAveragePool", "QLinearGlobalAveragePool"):
        if _value(node, "channels_last"):
            return None
        standard = op.removeprefix("QLinear")
        return [make_node(standard, [first], [out], _copies(node, {"channels_last"}))]
    return None


def _embedding(
    node: NodeProto, index: int, graph: GraphProto, shapes: dict[str, list[int]]
) -> list[NodeProto] | None:
    """(Q)EmbedLayerNormalization as the Gather from its word table."""
    table = shapes.get(node.input[2])
    if table is None or len(table) != 2:
        return None
    fake = _fake_weight(graph, f"__stand_in_{index}_table", table)
    return [make_node("Gather", [fake, node.input[0]], [node.output[0]])]


def _dense(
    node: NodeProto, index: int, graph: GraphProto, shapes: dict[str, list[int]]
) -> list[NodeProto] | None:
    """A quantized or fused dense op as Cast and MatMul with a [K, N] weight."""
    entry = DENSE[node.op_type]
    attrs = {a.name: a.i for a in node.attribute if a.type == a.INT}
    k_attr, n_attr = entry.size_attrs
    weight = entry.weight if entry.weight is not None and not k_attr else None
    if weight is not None and weight >= len(node.input):
        return None
    dims = shapes.get(node.input[weight]) if weight is not None else None
    if attrs.get("transA", 0) or entry.data is None:
        return None
    if weight is None:
        k, n = attrs.get(k_attr, 0), attrs.get(n_attr, 0)
    elif dims is not None and len(dims) == 2:
        k, n = dims[0], dims[1]
        if entry.transpose and attrs.get(entry.transpose, 0):
            k, n = n, k
    else:
        return None
    if k <= 0 or n <= 0:
        return None
    fake = _fake_weight(graph, f"__stand_in_{index}_w", [k, n])
    cast = f"__stand_in_{index}_a"
    return [
        make_node("Cast", [node.input[entry.data]], [cast], to=TensorProto.FLOAT),
        make_node("MatMul", [cast, fake], [node.output[0]]),
    ]


def _lstm(
    node: NodeProto, index: int, graph: GraphProto, shapes: dict[str, list[int]]
) -> list[NodeProto] | None:
    """DynamicQuantizeLSTM's W is [dirs, input, 4h], transposed from LSTM's [dirs, 4h, input]."""
    w, r = shapes.get(node.input[1]), shapes.get(node.input[2])
    if w is None or r is None or len(w) != 3 or len(r) != 3:
        return None
    dirs, inp, gates = w
    fake_w = _fake_weight(graph, f"__stand_in_{index}_W", [dirs, gates, inp])
    fake_r = _fake_weight(graph, f"__stand_in_{index}_R", [dirs, gates, r[1]])
    keep = [a for a in _copies(node) if a.name in ("hidden_size", "direction", "layout")]
    cast = f"__stand_in_{index}_x"
    return [
        make_node("Cast", [node.input[0]], [cast], to=TensorProto.FLOAT),
        make_node("LSTM", [cast, fake_w, fake_r], list(node.output[:3]), keep),
    ]


def _qgemm(
    node: NodeProto, index: int, graph: GraphProto, shapes: dict[str, list[int]]
) -> list[NodeProto] | None:
    """QGemm(A, a_scale, a_zp, B, ...): [M, K] x [K, N], quantized back to uint8 when it has
    an output scale, float otherwise."""
    dims = shapes.get(node.input[3])
    if dims is None or len(dims) != 2:
        return None
    trans_b = any(a.name == "transB" and a.i for a in node.attribute)
    k, n = (dims[1], dims[0]) if trans_b else (dims[0], dims[1])
    fake = _fake_weight(graph, f"__stand_in_{index}_w", [k, n])
    cast, product = f"__stand_in_{index}_a", f"__stand_in_{index}_y"
    quantized = len(node.input) > 7 and bool(node.input[7])
    nodes = [
        make_node("Cast", [node.input[0]], [cast], to=TensorProto.FLOAT),
        make_node("MatMul", [cast, fake], [product if quantized else node.output[0]]),
    ]
    if quantized:
        nodes.append(make_node("Cast", [product], [node.output[0]], to=TensorProto.UINT8))
    return nodes


def _nchwc(node: NodeProto) -> list[NodeProto] | None:
    """The standard op of a blocked-layout one (level-99 optimizer output). Channels stay
    padded to the block size, as onnxruntime computes them."""
    op, first, out = node.op_type, node.input[0], node.output[0]
    copies = _copies(node)  # before anything is built: a bad attribute fails the whole node
    if op in ("ReorderInput", "ReorderOutput"):
        to_nchw = op == "ReorderInput" and _value(node, "channels_last")
        to_nhwc = op == "ReorderOutput" and _value(node, "channels_last")
        if to_nchw or to_nhwc:
            perm = [0, 3, 1, 2] if to_nchw else [0, 2, 3, 1]
            return [make_node("Transpose", [first], [out], perm=perm)]
        return [make_node("Identity", [first], [out])]
    if op in NCHWC_STANDARD:
        keep = [a for a in copies if a.name not in NCHWC_ONLY_ATTRIBUTES]
        inputs = list(node.input[:3]) if op == "Conv" else [first]
        return [make_node(op, inputs, [out], keep)]
    return None


def _copies(node: NodeProto, drop: frozenset[str] | set[str] = frozenset()) -> list[AttributeProto]:
    """The node's attributes to carry over, as onnx.helper's round trip through values would:
    reference attributes raise, attributes without a value are left out."""
    return [a for a in node.attribute if a.name not in drop and attribute_value(a) is not None]


def _value(node: NodeProto, name: str) -> object:
    """The value of the node's last attribute of this name (None when it has none)."""
    found = [a for a in node.attribute if a.name == name]
    return attribute_value(found[-1]) if found else None
