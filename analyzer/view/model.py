"""The view's records: stored tensors, nodes, and the ModelView every later stage reads.

Built by graph.build; frozen, so visitors and rules can share them freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt

from analyzer.core import dtypes
from analyzer.core.onnxproto import TensorProto
from analyzer.core.records import quick_init
from analyzer.core.results import Shape
from analyzer.read.values.decode import tensor_values


@quick_init
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


@quick_init
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
    rewrite: str = ""
    """The graph rewrite that wrote this node, when the exporter says (torch's dynamo names the
    onnxscript rule: `FuseBatchNormIntoConv`)."""
    module: str = ""
    """The source module's path when the exporter records it (torch's dynamo: `layer2.short.1`),
    for exporters whose node names carry none (`node_Conv_101`)."""

    def attr(self, name: str, default: Any = None) -> Any:
        """The attribute's value, or `default` when it is absent or of another kind than the
        default (a hostile file's K given as a tensor must not reach `int()`)."""
        value = self.attrs.get(name, default)
        if default is None or value is default:
            return value
        kind = int if isinstance(default, bool) else type(default)
        return value if isinstance(value, kind) else default

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
    small: Mapping[str, TensorProto]
    """Global value name -> the stored tensor proto, for tensors small enough to keep values."""

    def shape(self, name: str) -> Shape | None:
        return self.shapes.get(name)

    def values(self, name: str) -> npt.NDArray[Any] | None:
        """The values of a small tensor stored in the file itself (None for any other value).

        Never external data: converting such a tensor would make onnx open its data file.
        """
        tensor = self.small.get(name) if name else None
        if tensor is None or tensor.data_location == TensorProto.EXTERNAL:
            return None
        try:
            return tensor_values(tensor)
        except Exception:  # a payload numpy cannot read: the values stay unknown
            return None


def normalize_domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain
