"""Ops counted by the catalogue's generic visitor: mostly onnxruntime's com.microsoft ops,
each one entry saying which inputs are weights, quantization or other constants."""

from __future__ import annotations

from collections.abc import Mapping

from analyzer.core.ops.spec import MS, OpSpec, spec

GENERIC_OPS: Mapping[tuple[str, str], OpSpec] = {
    # Attention blocks and their quantized / packed / decoding forms (com.microsoft).
    (MS, "LongformerAttention"): spec(
        "attention", "1:weight 2:bias 4:global_weight 5:global_bias", other="3,6"
    ),
    (MS, "DecoderAttention"): spec("attention", "2:q_weight 3:kv_weight 4:bias", other="5-11"),
    (MS, "QOrderedAttention"): spec(
        "attention",
        "5:q_weight 6:k_weight 7:v_weight 11:q_bias 12:k_bias 13:v_bias",
        quant="1-4,8-10,14-16",
        other="17-19",
    ),
    (MS, "QOrderedLongformerAttention"): spec(
        "attention",
        "2:weight 4:bias 8:global_weight 10:global_bias",
        quant="1,3,5,6,9,11,13",
        other="7,12",
    ),
    (MS, "SparseAttention"): spec("attention", other="5-10"),
    (MS, "DynamicSparseAttention"): spec(
        "attention",
        "14:q_norm_weight 15:k_norm_weight 16:head_sink",
        quant="18,19",
        other="7-13,17",
    ),
    (MS, "PagedAttention"): spec(
        "attention",
        "12:q_norm_weight 13:k_norm_weight 11:head_sink",
        quant="14,15",
        other="5-10,16",
    ),
    (MS, "SparsePagedAttention"): spec(
        "attention",
        "17:q_norm_weight 18:k_norm_weight 16:head_sink",
        quant="19,20",
        other="5-15,21",
    ),
    (MS, "SparseAttentionIndexer"): spec(
        "attention",
        "2:query_norm_weight 3:key_norm_weight 9:position_bias 10:head_weights",
        other="4-8,11-13",
    ),
    (MS, "PackedSparseAttentionIndexer"): spec(
        "attention",
        "2:query_norm_weight 3:key_norm_weight 9:position_bias 10:head_weights",
        other="4-8,11-21",
    ),
    (MS, "LinearAttention"): spec("attention", other="3"),
    ("", "LinearAttention"): spec("attention", other="3"),
    (MS, "LinearAttentionGate"): spec("elementwise", "1:dt_bias 2:decay_scale"),
    (MS, "GatedDeltaNet"): spec("attention", "7:a_log 8:dt_bias", other="3,6,9,10"),
    (MS, "Mamba2Verify"): spec(
        "recurrent", "3:conv_weight 4:conv_bias 5:dt_bias 6:A 7:D 8:norm_weight", other="1,2,9"
    ),
    (MS, "GatedRelativePositionBias"): spec(
        "attention", "1:query_bias 3:weight 4:bias 5:eco_a", other="2,6"
    ),
    (MS, "RelativePositionBias"): spec("embedding", "0:bias_table", other="1,2"),
    # Rotary embeddings: the cos/sin caches are computed tables, not parameters.
    (MS, "RotaryEmbedding"): spec("rotary", other="1-3"),
    (MS, "MRotaryEmbedding"): spec("rotary", other="1-3"),
    (MS, "GemmaRotaryEmbedding"): spec("rotary", other="0"),
    ("", "RotaryEmbedding"): spec("rotary", other="1-3"),
    (MS, "RMSNormRotary"): spec("norm", "1:scale", other="2-5"),
    # Normalizations and gated / fused elementwise ops with a learned vector.
    (MS, "GroupNorm"): spec("norm", "1:scale 2:bias"),
    (MS, "SkipGroupNorm"): spec("norm", "1:scale 2:bias 4:input_bias"),
    (MS, "BranchwiseRMSNorm"): spec("norm", "1:scale"),
    (MS, "GatedRMSNorm"): spec("norm", "1:scale"),
    (MS, "QOrderedLayerNormalization"): spec("norm", "2:scale 3:bias", quant="1,4"),
    (MS, "EngramGate"): spec("norm", "3:key_norm_scale 4:query_norm_scale 5:conv_norm_scale"),
    (MS, "BiasGelu"): spec("elementwise", "1:bias"),
    (MS, "FastGelu"): spec("elementwise", "1:bias"),
    (MS, "BiasAdd"): spec("elementwise", "1:bias"),
    (MS, "BiasSplitGelu"): spec("elementwise", "1:bias"),
    (MS, "BiasDropout"): spec("elementwise", "1:bias", other="3,4"),
    (MS, "BitmaskBiasDropout"): spec("elementwise", "1:bias", other="3,4"),
    (MS, "BiasSoftmax"): spec("elementwise", "1:bias"),
    (MS, "GatedAdd"): spec("elementwise", "3:gate_weight"),
    (MS, "ScaledSiLU"): spec("elementwise", "1:scale"),
    (MS, "HyperConnectionLowRankMix"): spec(
        "dense", "1:norm_scale 2:down_weight 3:up_weight 4:inject_weight"
    ),
    (MS, "HyperConnectionPreMix"): spec("dense", "1:pre_mix"),
    (MS, "HyperConnectionPostMix"): spec("dense", "2:post_mix 3:stream_mix"),
    # Embeddings.
    (MS, "QEmbedLayerNormalization"): spec(
        "embedding",
        "2:word_embedding 3:position_embedding 4:segment_embedding 5:scale 6:bias",
        quant="8-17",
        other="0,1,7",
    ),
    (MS, "TorchEmbedding"): spec("embedding", "0:embedding", other="1-3"),
    (MS, "WordConvEmbedding"): spec("embedding", "1:weight 2:bias 3:char_embedding"),
    # Mixtures of experts: every expert's matrices are parameters.
    (MS, "MoE"): spec(
        "dense", "2:fc1_weight 3:fc1_bias 4:fc2_weight 5:fc2_bias 6:fc3_weight 7:fc3_bias"
    ),
    (MS, "QMoE"): spec(
        "dense",
        "2:fc1_weight 4:fc1_bias 5:fc2_weight 7:fc2_bias 8:fc3_weight 10:fc3_bias 14:router_weight",
        quant="3,6,9,11-13,15-20",
        packed_bits="expert_weight_bits",
    ),
    (MS, "MoEPacked"): spec("dense", "2:gate_weight 3:up_weight 4:down_weight 5:router_weight"),
    (MS, "MoEGroupRouter"): spec("dense", "1:expert_bias 2:projection_weight"),
    (MS, "RouterGateUpProj"): spec("dense", "1:weight"),
    (MS, "MatMulNBitsMlp"): spec(
        "dense",
        "2:norm_scale 3:gate_weight 5:gate_bias 6:up_weight 8:up_bias",
        quant="4,7",
        packed_bits="bits",
    ),
    (MS, "MatMulNBitsQkv"): spec(
        "dense",
        "2:norm_scale 3:q_weight 5:q_bias 6:k_weight 8:k_bias 9:v_weight 11:v_bias",
        quant="4,7,10",
        packed_bits="bits",
    ),
    (MS, "MatMulNBitsQLoRA"): spec(
        "dense", "1:weight 3:lora_A 5:lora_B", quant="2,4,6", packed_bits="bits"
    ),
    (MS, "MatMulFpQ4"): spec("dense", "1:weight", other="2", packed_bits="bits"),
    (MS, "MatMulPacked"): spec("dense", "1:weight", quant="2"),
    (MS, "SparseToDenseMatMul"): spec("dense", "0:weight"),
    (MS, "CDist"): spec("dense", "1:weight"),
    # Convolutions with state (streaming models).
    (MS, "CausalConvWithState"): spec("conv", "1:weight 2:bias", other="3"),
    ("", "CausalConvWithState"): spec("conv", "1:weight 2:bias", other="3"),
    (MS, "VarlenCausalConvWithState"): spec("conv", "1:weight 3:bias", other="2,4-7"),
    # Quantized elementwise forms: a constant quantized operand is a parameter.
    (MS, "QLinearWhere"): spec("elementwise", quant="2,3,5-8", other="0"),
    (MS, "MulInteger"): spec("elementwise", quant="1,3"),
    (MS, "ComplexMul"): spec("elementwise"),
    (MS, "ComplexMulConj"): spec("elementwise"),
    # Quantization and shape helpers of the contrib domain.
    (MS, "DequantizeLinear"): spec("quantize", quant="1,2"),
    (MS, "QuantizeLinear"): spec("quantize", quant="1,2"),
    (MS, "DequantizeWithOrder"): spec("quantize", quant="1"),
    (MS, "QuantizeWithOrder"): spec("quantize", quant="1"),
    (MS, "DequantizeBFP"): spec("quantize", other="1,2"),
    (MS, "QuantizeBFP"): spec("quantize"),
    (MS, "QLinearAveragePool"): spec("pool", quant="1-4"),
    (MS, "QLinearGlobalAveragePool"): spec("pool", quant="1-4"),
    (MS, "QLinearLeakyRelu"): spec("activation", quant="1-4"),
    (MS, "QLinearSigmoid"): spec("activation", quant="1-4"),
    (MS, "QLinearSoftmax"): spec("activation", quant="1-4"),
    (MS, "QLinearReduceMean"): spec("pool", quant="1-4"),
    (MS, "QOrderedGelu"): spec("activation", quant="1,2"),
    (MS, "Pad"): spec("shape", other="1,2"),
    (MS, "ExpandDims"): spec("shape", other="1"),
    (MS, "Trilu"): spec("shape", other="1"),
    (MS, "Range"): spec("shape", other="0-2"),
    (MS, "CropAndResize"): spec("shape", other="1-3"),
    (MS, "MaxpoolWithMask"): spec("pool", other="1"),
    (MS, "NGramHashMapping"): spec("embedding", other="1-6"),
    (MS, "VarlenNGramHashMapping"): spec("embedding", other="1-9"),
    ("com.ms.internal.nhwc", "QLinearConvTranspose"): spec(
        "conv", "3:weight 8:bias", quant="1,2,4-7"
    ),
}
"""Ops the generic visitor counts (no MACs beyond what its family implies); ops with a visitor
of their own (Conv, MatMul, LSTM, Attention, ...) are in `layers`."""
