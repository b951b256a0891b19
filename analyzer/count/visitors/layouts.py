"""onnxruntime's own domains beside com.microsoft: the blocked-layout ops its level-99
optimizer writes (com.microsoft.nchwc), the channels-last forms of its layout transform
(com.ms.internal.nhwc), and the few ops it registers in the onnx domain itself.

Each is the standard op with another memory layout, so it takes the standard op's handler:
weights sit at the same input positions, and MACs follow from the output shape whatever the
layout. nchwc weights are stored reordered into channel blocks, padded with zeros to the block
size: the file holds the padded elements, and those are what is counted.
"""

from __future__ import annotations

from analyzer.core.ops import LAYOUT, MS, counted_by
from analyzer.count.visitors.base import lookup, register
from analyzer.count.visitors.norm import rms_norm

register("SimplifiedLayerNormalization")(rms_norm)  # onnxruntime registers it in ai.onnx too

for _domain, _op in counted_by(LAYOUT):
    _handler = lookup("", _op) or lookup(MS, _op)
    assert _handler is not None, _op
    register(_op, domain=_domain)(_handler)
