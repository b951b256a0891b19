"""The op catalogue: for every op onnx-audit knows, which inputs are weights, which only
quantize or parametrise it, and which ops hold no weights at all.

One table, so that a new op is one decision in one place: `tests/test_op_catalogue.py` fails
for any op of the installed onnx, or any com.microsoft op onnxruntime registers, that is
neither handled by a visitor, described here, nor listed as weight-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

MS = "com.microsoft"


@dataclass(frozen=True, slots=True)
class OpSpec:
    """Inputs of one op by position. Inputs not named are activations (data)."""

    family: str
    weights: Mapping[int, str] = field(default_factory=dict)
    """position -> role of the inputs that are parameters (trainable)."""
    quant: frozenset[int] = frozenset()
    """Scales and zero points: quantization constants."""
    other: frozenset[int] = frozenset()
    """Shapes, masks, rotary caches, initial states: other constants."""
    packed_bits: str = ""
    """Attribute naming the bit width of weights packed into bytes (4-bit in uint8)."""


def _spec(family: str, weights: str = "", quant: str = "", other: str = "", **kw: str) -> OpSpec:
    """`weights` as "1:weight 2:bias"; `quant` and `other` as "3,4,6-8"."""
    pairs = (item.split(":") for item in weights.split())
    return OpSpec(family, {int(p): r for p, r in pairs}, _positions(quant), _positions(other), **kw)


def _positions(text: str) -> frozenset[int]:
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return frozenset(out)


CATALOGUE: Mapping[tuple[str, str], OpSpec] = {
    # Attention blocks and their quantized / packed / decoding forms (com.microsoft).
    (MS, "LongformerAttention"): _spec(
        "attention", "1:weight 2:bias 4:global_weight 5:global_bias", other="3,6"
    ),
    (MS, "DecoderAttention"): _spec("attention", "2:q_weight 3:kv_weight 4:bias", other="5-11"),
    (MS, "QOrderedAttention"): _spec(
        "attention",
        "5:q_weight 6:k_weight 7:v_weight 11:q_bias 12:k_bias 13:v_bias",
        quant="1-4,8-10,14-16",
        other="17-19",
    ),
    (MS, "QOrderedLongformerAttention"): _spec(
        "attention",
        "2:weight 4:bias 8:global_weight 10:global_bias",
        quant="1,3,5,6,9,11,13",
        other="7,12",
    ),
    (MS, "SparseAttention"): _spec("attention", other="5-10"),
    (MS, "DynamicSparseAttention"): _spec(
        "attention",
        "14:q_norm_weight 15:k_norm_weight 16:head_sink",
        quant="18,19",
        other="7-13,17",
    ),
    (MS, "PagedAttention"): _spec(
        "attention",
        "12:q_norm_weight 13:k_norm_weight 11:head_sink",
        quant="14,15",
        other="5-10,16",
    ),
    (MS, "SparsePagedAttention"): _spec(
        "attention",
        "17:q_norm_weight 18:k_norm_weight 16:head_sink",
        quant="19,20",
        other="5-15,21",
    ),
    (MS, "SparseAttentionIndexer"): _spec(
        "attention",
        "2:query_norm_weight 3:key_norm_weight 9:position_bias 10:head_weights",
        other="4-8,11-13",
    ),
    (MS, "PackedSparseAttentionIndexer"): _spec(
        "attention",
        "2:query_norm_weight 3:key_norm_weight 9:position_bias 10:head_weights",
        other="4-8,11-21",
    ),
    (MS, "LinearAttention"): _spec("attention", other="3"),
    ("", "LinearAttention"): _spec("attention", other="3"),
    (MS, "LinearAttentionGate"): _spec("elementwise", "1:dt_bias 2:decay_scale"),
    (MS, "GatedDeltaNet"): _spec("attention", "7:a_log 8:dt_bias", other="3,6,9,10"),
    (MS, "Mamba2Verify"): _spec(
        "recurrent", "3:conv_weight 4:conv_bias 5:dt_bias 6:A 7:D 8:norm_weight", other="1,2,9"
    ),
    (MS, "GatedRelativePositionBias"): _spec(
        "attention", "1:query_bias 3:weight 4:bias 5:eco_a", other="2,6"
    ),
    (MS, "RelativePositionBias"): _spec("embedding", "0:bias_table", other="1,2"),
    # Rotary embeddings: the cos/sin caches are computed tables, not parameters.
    (MS, "RotaryEmbedding"): _spec("rotary", other="1-3"),
    (MS, "MRotaryEmbedding"): _spec("rotary", other="1-3"),
    (MS, "GemmaRotaryEmbedding"): _spec("rotary", other="0"),
    ("", "RotaryEmbedding"): _spec("rotary", other="1-3"),
    (MS, "RMSNormRotary"): _spec("norm", "1:scale", other="2-5"),
    # Normalizations and gated / fused elementwise ops with a learned vector.
    (MS, "GroupNorm"): _spec("norm", "1:scale 2:bias"),
    (MS, "SkipGroupNorm"): _spec("norm", "1:scale 2:bias 4:input_bias"),
    (MS, "BranchwiseRMSNorm"): _spec("norm", "1:scale"),
    (MS, "GatedRMSNorm"): _spec("norm", "1:scale"),
    (MS, "QOrderedLayerNormalization"): _spec("norm", "2:scale 3:bias", quant="1,4"),
    (MS, "EngramGate"): _spec("norm", "3:key_norm_scale 4:query_norm_scale 5:conv_norm_scale"),
    (MS, "BiasGelu"): _spec("elementwise", "1:bias"),
    (MS, "FastGelu"): _spec("elementwise", "1:bias"),
    (MS, "BiasAdd"): _spec("elementwise", "1:bias"),
    (MS, "BiasSplitGelu"): _spec("elementwise", "1:bias"),
    (MS, "BiasDropout"): _spec("elementwise", "1:bias", other="3,4"),
    (MS, "BitmaskBiasDropout"): _spec("elementwise", "1:bias", other="3,4"),
    (MS, "BiasSoftmax"): _spec("elementwise", "1:bias"),
    (MS, "GatedAdd"): _spec("elementwise", "3:gate_weight"),
    (MS, "ScaledSiLU"): _spec("elementwise", "1:scale"),
    (MS, "HyperConnectionLowRankMix"): _spec(
        "dense", "1:norm_scale 2:down_weight 3:up_weight 4:inject_weight"
    ),
    (MS, "HyperConnectionPreMix"): _spec("dense", "1:pre_mix"),
    (MS, "HyperConnectionPostMix"): _spec("dense", "2:post_mix 3:stream_mix"),
    # Embeddings.
    (MS, "QEmbedLayerNormalization"): _spec(
        "embedding",
        "2:word_embedding 3:position_embedding 4:segment_embedding 5:scale 6:bias",
        quant="8-17",
        other="0,1,7",
    ),
    (MS, "TorchEmbedding"): _spec("embedding", "0:embedding", other="1-3"),
    (MS, "WordConvEmbedding"): _spec("embedding", "1:weight 2:bias 3:char_embedding"),
    # Mixtures of experts: every expert's matrices are parameters.
    (MS, "MoE"): _spec(
        "dense", "2:fc1_weight 3:fc1_bias 4:fc2_weight 5:fc2_bias 6:fc3_weight 7:fc3_bias"
    ),
    (MS, "QMoE"): _spec(
        "dense",
        "2:fc1_weight 4:fc1_bias 5:fc2_weight 7:fc2_bias 8:fc3_weight 10:fc3_bias 14:router_weight",
        quant="3,6,9,11-13,15-20",
        packed_bits="expert_weight_bits",
    ),
    (MS, "MoEPacked"): _spec("dense", "2:gate_weight 3:up_weight 4:down_weight 5:router_weight"),
    (MS, "MoEGroupRouter"): _spec("dense", "1:expert_bias 2:projection_weight"),
    (MS, "RouterGateUpProj"): _spec("dense", "1:weight"),
    (MS, "MatMulNBitsMlp"): _spec(
        "dense",
        "2:norm_scale 3:gate_weight 5:gate_bias 6:up_weight 8:up_bias",
        quant="4,7",
        packed_bits="bits",
    ),
    (MS, "MatMulNBitsQkv"): _spec(
        "dense",
        "2:norm_scale 3:q_weight 5:q_bias 6:k_weight 8:k_bias 9:v_weight 11:v_bias",
        quant="4,7,10",
        packed_bits="bits",
    ),
    (MS, "MatMulNBitsQLoRA"): _spec(
        "dense", "1:weight 3:lora_A 5:lora_B", quant="2,4,6", packed_bits="bits"
    ),
    (MS, "MatMulFpQ4"): _spec("dense", "1:weight", other="2", packed_bits="bits"),
    (MS, "MatMulPacked"): _spec("dense", "1:weight", quant="2"),
    (MS, "SparseToDenseMatMul"): _spec("dense", "0:weight"),
    (MS, "CDist"): _spec("dense", "1:weight"),
    # Convolutions with state (streaming models).
    (MS, "CausalConvWithState"): _spec("conv", "1:weight 2:bias", other="3"),
    ("", "CausalConvWithState"): _spec("conv", "1:weight 2:bias", other="3"),
    (MS, "VarlenCausalConvWithState"): _spec("conv", "1:weight 3:bias", other="2,4-7"),
    # Quantized elementwise forms: a constant quantized operand is a parameter.
    (MS, "QLinearWhere"): _spec("elementwise", quant="2,3,5-8", other="0"),
    (MS, "MulInteger"): _spec("elementwise", quant="1,3"),
    (MS, "ComplexMul"): _spec("elementwise"),
    (MS, "ComplexMulConj"): _spec("elementwise"),
    # Quantization and shape helpers of the contrib domain.
    (MS, "DequantizeLinear"): _spec("quantize", quant="1,2"),
    (MS, "QuantizeLinear"): _spec("quantize", quant="1,2"),
    (MS, "DequantizeWithOrder"): _spec("quantize", quant="1"),
    (MS, "QuantizeWithOrder"): _spec("quantize", quant="1"),
    (MS, "DequantizeBFP"): _spec("quantize", other="1,2"),
    (MS, "QuantizeBFP"): _spec("quantize"),
    (MS, "QLinearAveragePool"): _spec("pool", quant="1-4"),
    (MS, "QLinearGlobalAveragePool"): _spec("pool", quant="1-4"),
    (MS, "QLinearLeakyRelu"): _spec("activation", quant="1-4"),
    (MS, "QLinearSigmoid"): _spec("activation", quant="1-4"),
    (MS, "QLinearSoftmax"): _spec("activation", quant="1-4"),
    (MS, "QLinearReduceMean"): _spec("pool", quant="1-4"),
    (MS, "QOrderedGelu"): _spec("activation", quant="1,2"),
    (MS, "Pad"): _spec("shape", other="1,2"),
    (MS, "ExpandDims"): _spec("shape", other="1"),
    (MS, "Trilu"): _spec("shape", other="1"),
    (MS, "Range"): _spec("shape", other="0-2"),
    (MS, "CropAndResize"): _spec("shape", other="1-3"),
    (MS, "MaxpoolWithMask"): _spec("pool", other="1"),
    (MS, "NGramHashMapping"): _spec("embedding", other="1-6"),
    (MS, "VarlenNGramHashMapping"): _spec("embedding", other="1-9"),
    ("com.ms.internal.nhwc", "QLinearConvTranspose"): _spec(
        "conv", "3:weight 8:bias", quant="1,2,4-7"
    ),
}
"""Ops handled by the catalogue's generic visitor (no MACs beyond what its family implies);
ops with a visitor of their own (Conv, MatMul, LSTM, Attention, ...) are not repeated here."""


def _names(domain: str, text: str) -> list[tuple[str, str]]:
    return [(domain, op) for op in text.split()]


WEIGHT_FREE: frozenset[tuple[str, str]] = frozenset(
    _names(
        "",
        """
    Abs Acos Acosh AffineGrid And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool
    BitCast BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor BlackmanWindow Cast CastLike
    Ceil Celu CenterCropPad Col2Im Compress ConcatFromSequence Constant ConstantOfShape Cos
    Cosh CumProd CumSum DFT DepthToSpace DequantizeLinear Det Div Dropout
    DynamicQuantizeLinear Elu Equal Erf Exp EyeLike Flatten Floor Gelu GatherElements
    GatherND GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample
    HammingWindow HannWindow HardSigmoid HardSwish Hardmax Identity If ImageDecoder IsInf
    IsNaN LRN LeakyRelu Less LessOrEqual Log LogSoftmax LpNormalization LpPool MaxPool
    MaxRoiPool MaxUnpool MeanVarianceNormalization MelWeightMatrix Mish Mod Multinomial Neg
    NegativeLogLikelihoodLoss NonMaxSuppression NonZero Not OneHot Optional
    OptionalGetElement OptionalHasElement Or Pow QuantizeLinear RandomNormal
    RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2
    ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
    ReduceSumSquare RegexFullMatch Relu Resize ReverseSequence RoiAlign Round STFT
    Scan Scatter ScatterElements ScatterND Selu SequenceAt SequenceConstruct SequenceEmpty
    SequenceErase SequenceInsert SequenceLength SequenceMap Shape Shrink Sigmoid Sign Sin
    Sinh Size Softmax SoftmaxCrossEntropyLoss Softplus Softsign SpaceToDepth
    SplitToSequence Sqrt StringConcat StringNormalizer StringSplit Sub Swish Tan
    Tanh TensorScatter TfIdfVectorizer ThresholdedRelu TopK Transpose Trilu Unique
    Upsample Xor Bernoulli
    """,
    )
    + _names("ai.onnx.preview", "FlexAttention")
    # onnxruntime's experimental and TensorRT-plugin ops in the onnx domain: data in, data out
    + _names(
        "",
        """
    Crop DisentangledAttention_TRT DynamicSlice EfficientNMS_TRT GRUUnit MemcpyFromHost
    MemcpyToHost MultilevelCropAndResize_TRT PyramidROIAlign_TRT
    """,
    )
    + _names(
        "com.microsoft.nchwc",
        "AveragePool GlobalAveragePool GlobalMaxPool MaxPool ReorderInput ReorderOutput Upsample",
    )
    + _names(
        "com.ms.internal.nhwc",
        """
    AveragePool DepthToSpace GlobalAveragePool GlobalLpPool GlobalMaxPool GridSample LRN
    LpPool MaxPool MaxUnpool QLinearAveragePool Resize SpaceToDepth
    """,
    )
    + _names("", "SwiGLU")
    + _names("ai.onnx.preview.training", "Adagrad Adam Gradient Momentum")
    + _names(
        MS,
        """
    BeamSearch BifurcationDetector BitmaskDropout ConvStateReplay DynamicTimeWarping
    EPContext GatedDeltaNetStateReplay GatherND GatherPacked Gelu GreedySearch GridSample
    Inverse Irfft IsAllFinite MurmurHash3 NGramRepeatBlock NhwcMaxPool
    PackedSparseAttentionIndexerMerge QuickGelu ReduceSumInteger RemovePadding
    RestorePadding Rfft SampleOp Sampling Snpe SpeculativePrefixCommit SwiGLU Tokenizer
    UnfoldTensor Unique WhisperBeamSearch
    """,
    )
)
"""Ops whose inputs are all data, indices, shapes or settings: a constant feeding one is an
other constant, never a parameter, and no warning is due. Control flow (If, Scan, BeamSearch)
holds its weights in subgraphs, which are read as graphs of their own. onnx's Attention takes
Q, K and V as activations (the projections are MatMuls before it)."""


ATTRIBUTE_MODELS: frozenset[tuple[str, str]] = frozenset(
    # onnxruntime's experimental onnx-domain ops keep their values in attributes too
    _names("", "Affine GivenTensorFill ImageScaler ParametricSoftplus Scale ScaledTanh")
    + _names(
        "ai.onnx.ml",
        """
    ArrayFeatureExtractor Binarizer CastMap CategoryMapper DictVectorizer FeatureVectorizer
    Imputer LabelEncoder LinearClassifier LinearRegressor Normalizer OneHotEncoder
    SVMClassifier SVMRegressor Scaler TreeEnsemble TreeEnsembleClassifier
    TreeEnsembleRegressor ZipMap
    """,
    )
)
"""Classic-ML ops (ai.onnx.ml): their learned values are attribute lists, not tensors, so they
are not in the stored-tensor accounting; a warning says the model's size is not counted."""


def spec(domain: str, op_type: str) -> OpSpec | None:
    return CATALOGUE.get((domain, op_type))


def weight_free(domain: str, op_type: str) -> bool:
    return (domain, op_type) in WEIGHT_FREE
