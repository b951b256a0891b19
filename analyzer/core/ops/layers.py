"""Ops counted by a visitor of their own, or weight-free ops with inputs that only shape or
quantize them: dense, conv, recurrent, norm, embedding and attention layers, the elementwise
ops a constant operand can feed, the shape and quantization ops."""

from __future__ import annotations

from collections.abc import Mapping

from analyzer.core.ops.spec import CONV, DENSE, LAYOUT, MS, NCHWC, NHWC, NONE, OWN, OpSpec, spec

_GEMM = spec("dense", "1:weight 2:bias", data=0, transpose="transB", visitor=DENSE)
_MATMUL = spec("dense", "1:weight", data=0, bias_add=True, visitor=DENSE)
_MATMUL_T = spec("dense", "1:weight", data=0, transpose="transB", visitor=DENSE)
_CONV = spec("conv", "1:weight 2:bias", data=0, bias_add=True, visitor=CONV)
_QLINEAR_CONV = spec("conv", "3:weight 8:bias", quant="1,2,4-7", data=0, visitor=CONV)
_CONV_T = spec("conv-transpose", "1:weight 2:bias", data=0, bias_add=True, visitor=OWN)
_BATCH_NORM = spec("norm", "1:scale 2:bias 3:mean 4:var", statistics="3,4", visitor=OWN)
_SCALE_BIAS = spec("norm", "1:scale 2:bias", visitor=OWN)
_RMS = spec("norm", "1:scale", visitor=OWN)
_ELEMENTWISE = spec("elementwise", visitor=OWN)
"""Constant operands follow the elementwise rule (a float tensor of several values is learned)."""
_SHAPE = spec("shape", other="1", visitor=OWN)
"""A stored table cut to bounds read from shapes is a layer (count/visitors/misc.table_view)."""


def _layout(standard: OpSpec) -> OpSpec:
    """onnxruntime's layout form of a standard op: same inputs, the standard op's visitor."""
    return spec(
        standard.family,
        " ".join(f"{p}:{r}" for p, r in sorted(standard.weights.items())),
        ",".join(map(str, sorted(standard.quant))),
        ",".join(map(str, sorted(standard.other))),
        statistics=",".join(map(str, sorted(standard.statistics))),
        data=standard.data,
        visitor=LAYOUT,
    )


LAYERS: Mapping[tuple[str, str], OpSpec] = {
    # Dense layers: `data` times the [K, N] `weight` (transposed when `transpose` is set).
    ("", "Gemm"): _GEMM,
    (MS, "FusedGemm"): _GEMM,
    ("", "MatMul"): _MATMUL,
    (MS, "FusedMatMul"): spec(
        "dense", "1:weight", data=0, transpose="transB", bias_add=True, visitor=DENSE
    ),
    (MS, "TransposeMatMul"): _MATMUL_T,
    (MS, "FusedMatMulActivation"): _MATMUL_T,
    (MS, "MatMulInteger16"): _MATMUL_T,
    ("", "QLinearMatMul"): spec("dense", "3:weight", quant="1,2,4-7", data=0, visitor=DENSE),
    ("", "MatMulInteger"): spec("dense", "1:weight", quant="2,3", data=0, visitor=DENSE),
    (MS, "DynamicQuantizeMatMul"): spec(
        "dense", "1:weight 4:bias", quant="2,3", data=0, visitor=DENSE
    ),
    (MS, "MatMulIntegerToFloat"): spec(
        "dense", "1:weight 6:bias", quant="2-5", data=0, visitor=DENSE
    ),
    (MS, "QGemm"): spec(
        "dense", "3:weight 6:bias", quant="1,2,4,5,7,8", data=0, transpose="transB", visitor=DENSE
    ),
    (MS, "GemmFastGelu"): spec("dense", "1:weight 2:bias", data=0, visitor=DENSE),
    (MS, "GemmFloat8"): spec(
        "dense", "1:weight 2:bias", quant="3-5", data=0, transpose="transB", visitor=DENSE
    ),
    (MS, "QOrderedMatMul"): spec(
        "dense", "2:weight 5:bias", quant="1,3,4,7", data=0, visitor=DENSE
    ),
    (MS, "MatMulBlockQuantizedFp8Weight"): spec(
        "dense", "1:weight 4:bias", quant="2,3", data=0, visitor=DENSE
    ),
    (MS, "MatMulBlockQuantizedFp4Weight"): spec(
        "dense", "1:weight 5:bias", quant="2-4", data=0, visitor=DENSE
    ),
    (MS, "MatMulNBits"): spec(
        "dense",
        "1:weight 5:bias",
        quant="2-4",
        packed_bits="bits",
        data=0,
        size_attrs=("K", "N"),
        visitor=OWN,
    ),
    (MS, "MatMulBnb4"): spec(
        "dense", "1:weight", quant="2", data=0, size_attrs=("K", "N"), visitor=OWN
    ),
    ("", "Einsum"): spec("dense", visitor=OWN),
    # Convolutions: `data` convolved with the [F, C/group, k...] `weight`.
    ("", "Conv"): _CONV,
    (MS, "FusedConv"): spec("conv", "1:weight 2:bias", data=0, visitor=CONV),
    (MS, "NhwcConv"): spec("conv-nhwc", "1:weight 2:bias", data=0, visitor=CONV),
    (MS, "NhwcFusedConv"): spec("conv-nhwc", "1:weight 2:bias", data=0, visitor=CONV),
    ("", "QLinearConv"): _QLINEAR_CONV,
    (MS, "QLinearConv"): _QLINEAR_CONV,
    ("", "ConvInteger"): spec("conv", "1:weight", quant="2,3", data=0, visitor=CONV),
    ("", "DeformConv"): spec("deformable-conv", "1:weight 3:bias", data=0, visitor=CONV),
    ("", "ConvTranspose"): _CONV_T,
    (MS, "ConvTransposeWithDynamicPads"): spec(
        "conv-transpose", "1:weight 3:bias", other="2", data=0, visitor=OWN
    ),
    (NCHWC, "Conv"): _layout(_CONV),
    (NHWC, "Conv"): _layout(_CONV),
    (NHWC, "QLinearConv"): _layout(_QLINEAR_CONV),
    (NHWC, "ConvTranspose"): _layout(_CONV_T),
    (NHWC, "BatchNormalization"): _layout(_BATCH_NORM),
    (NHWC, "InstanceNormalization"): _layout(_SCALE_BIAS),
    # Recurrent layers: sequence lengths and initial states are other constants.
    ("", "LSTM"): spec("recurrent", "1:W 2:R 3:B 7:P", other="4-6", visitor=OWN),
    ("", "GRU"): spec("recurrent", "1:W 2:R 3:B", other="4,5", visitor=OWN),
    ("", "RNN"): spec("recurrent", "1:W 2:R 3:B", other="4,5", visitor=OWN),
    (MS, "DynamicQuantizeLSTM"): spec(
        "recurrent", "1:W 2:R 3:B 7:P", quant="8-11", other="4-6", visitor=OWN
    ),
    (MS, "AttnLSTM"): spec(
        "recurrent", "1:W 2:R 3:B 7:P 8:QW 9:MW 10:V 13:AW", other="4-6,11,12", visitor=OWN
    ),
    # Normalizations: scales and shifts are trained, running statistics are not.
    ("", "BatchNormalization"): _BATCH_NORM,
    ("", "LayerNormalization"): _SCALE_BIAS,
    ("", "GroupNormalization"): _SCALE_BIAS,
    ("", "InstanceNormalization"): _SCALE_BIAS,
    ("", "RMSNormalization"): _RMS,
    ("", "SimplifiedLayerNormalization"): _RMS,
    (MS, "SimplifiedLayerNormalization"): _RMS,
    (MS, "SkipLayerNormalization"): spec("norm", "2:scale 3:bias 4:input_bias", visitor=OWN),
    (MS, "SkipSimplifiedLayerNormalization"): spec("norm", "2:scale 3:input_bias", visitor=OWN),
    # Embeddings.
    ("", "Gather"): spec("embedding", "0:embedding", other="1", visitor=OWN),
    (MS, "GatherBlockQuantized"): spec(
        "embedding", "0:embedding", quant="2,3", other="1", packed_bits="bits", visitor=OWN
    ),
    (MS, "EmbedLayerNormalization"): spec(
        "embedding",
        "2:word_embedding 3:position_embedding 4:segment_embedding 5:scale 6:bias",
        visitor=OWN,
    ),
    # Attention: packed QKV projections, or projected Q, K, V with only a bias or norms.
    (MS, "Attention"): spec("attention", "1:weight 2:bias", other="3-6", visitor=OWN),
    (MS, "DecoderMaskedSelfAttention"): spec(
        "attention", "1:weight 2:bias", other="3-8", visitor=OWN
    ),
    (MS, "PackedAttention"): spec("attention", "1:weight 2:bias", other="3-5", visitor=OWN),
    (MS, "QAttention"): spec(
        "attention", "1:weight 2:bias", quant="3,4,6,7", other="5,8", visitor=OWN
    ),
    (MS, "MultiHeadAttention"): spec("attention", "3:bias", other="4-9", visitor=OWN),
    (MS, "DecoderMaskedMultiHeadAttention"): spec("attention", "10:bias", other="3-9", visitor=OWN),
    (MS, "PackedMultiHeadAttention"): spec("attention", "3:bias", other="4-6", visitor=OWN),
    (MS, "GroupQueryAttention"): spec(
        "attention",
        "11:head_sink 14:q_norm_weight 15:k_norm_weight",
        quant="12,13",
        other="3-10,16",
        visitor=OWN,
    ),
    # Elementwise ops a constant operand can feed (a position table, a class token).
    ("", "PRelu"): spec("activation", "1:slope", visitor=OWN),
    ("", "Add"): _ELEMENTWISE,
    ("", "Mul"): _ELEMENTWISE,
    ("", "Sum"): _ELEMENTWISE,
    ("", "Mean"): _ELEMENTWISE,
    ("", "Where"): _ELEMENTWISE,
    ("", "Concat"): _ELEMENTWISE,
    ("", "Expand"): spec("elementwise", other="1", visitor=OWN),
    ("", "Tile"): spec("elementwise", other="1", visitor=OWN),
    ("", "Pad"): spec("elementwise", other="1-3", visitor=OWN),
    (MS, "QLinearAdd"): spec("elementwise", quant="1,2,4-7", visitor=OWN),
    (MS, "QLinearMul"): spec("elementwise", quant="1,2,4-7", visitor=OWN),
    (MS, "QLinearConcat"): spec("elementwise", quant="0,1", visitor=OWN),
    ("", "Loop"): spec("control", visitor=OWN),
    # Shape ops: a stored table cut to bounds read from shapes is a layer; shapes are other.
    ("", "Reshape"): _SHAPE,
    ("", "Squeeze"): _SHAPE,
    ("", "Unsqueeze"): _SHAPE,
    ("", "Split"): _SHAPE,
    ("", "Slice"): spec("shape", other="1-4", visitor=OWN),
    # Weight-free ops whose constant inputs only quantize, shape or index the data.
    ("", "QuantizeLinear"): spec("quantize", quant="1,2", visitor=NONE),
    ("", "DequantizeLinear"): spec("quantize", quant="1,2", visitor=NONE),
    ("", "GatherElements"): spec("shape", other="1", visitor=NONE),
    ("", "GatherND"): spec("shape", other="1", visitor=NONE),
    ("", "Resize"): spec("resample", other="1-3", visitor=NONE),
    ("", "Upsample"): spec("resample", other="1", visitor=NONE),
    ("", "ConstantOfShape"): spec("shape", other="0", visitor=NONE),
    ("", "OneHot"): spec("shape", other="0-2", visitor=NONE),
    ("", "Range"): spec("shape", other="0-2", visitor=NONE),
    ("", "TopK"): spec("shape", other="1", visitor=NONE),
    ("", "CumSum"): spec("shape", other="1", visitor=NONE),
    ("", "ReduceSum"): spec("reduce", other="1", visitor=NONE),
    ("", "ReduceMean"): spec("reduce", other="1", visitor=NONE),
    ("", "ReduceMax"): spec("reduce", other="1", visitor=NONE),
    ("", "ReduceMin"): spec("reduce", other="1", visitor=NONE),
    ("", "ReduceProd"): spec("reduce", other="1", visitor=NONE),
    ("", "ReduceL2"): spec("reduce", other="1", visitor=NONE),
    ("", "ReduceL1"): spec("reduce", other="1", visitor=NONE),
    ("", "ReduceSumSquare"): spec("reduce", other="1", visitor=NONE),
    ("", "Attention"): spec("attention", other="3-6", visitor=NONE),
}
