"""Ops that hold no weights (by name), and classic-ML ops whose values are attributes."""

from __future__ import annotations

from analyzer.core.ops.spec import MS, names

WEIGHT_FREE_NAMES: frozenset[tuple[str, str]] = frozenset(
    names(
        "",
        """
    Abs Acos Acosh AffineGrid And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool Bernoulli
    BitCast BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor BlackmanWindow Cast CastLike
    Ceil Celu CenterCropPad Clip Col2Im Compress ConcatFromSequence Constant Cos Cosh CumProd
    DFT DepthToSpace Det Div Dropout DynamicQuantizeLinear Elu Equal Erf Exp EyeLike Flatten
    Floor Gelu GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample
    HammingWindow HannWindow HardSigmoid HardSwish Hardmax Identity If ImageDecoder IsInf IsNaN
    LRN LeakyRelu Less LessOrEqual Log LogSoftmax LpNormalization LpPool Max MaxPool MaxRoiPool
    MaxUnpool MeanVarianceNormalization MelWeightMatrix Min Mish Mod Multinomial Neg
    NegativeLogLikelihoodLoss NonMaxSuppression NonZero Not Optional OptionalGetElement
    OptionalHasElement Or Pow RandomNormal RandomNormalLike RandomUniform RandomUniformLike
    Reciprocal ReduceLogSum ReduceLogSumExp RegexFullMatch Relu ReverseSequence RoiAlign Round
    STFT Scan Scatter ScatterElements ScatterND Selu SequenceAt SequenceConstruct SequenceEmpty
    SequenceErase SequenceInsert SequenceLength SequenceMap Shape Shrink Sigmoid Sign Sin Sinh
    Size Softmax SoftmaxCrossEntropyLoss Softplus Softsign SpaceToDepth SplitToSequence Sqrt
    StringConcat StringNormalizer StringSplit Sub Swish Tan Tanh TensorScatter TfIdfVectorizer
    ThresholdedRelu Transpose Trilu Unique Xor
    """,
    )
    + names("ai.onnx.preview", "FlexAttention")
    # onnxruntime's experimental and TensorRT-plugin ops in the onnx domain: data in, data out
    + names(
        "",
        """
    Crop DisentangledAttention_TRT DynamicSlice EfficientNMS_TRT GRUUnit MemcpyFromHost
    MemcpyToHost MultilevelCropAndResize_TRT PyramidROIAlign_TRT
    """,
    )
    + names(
        "com.microsoft.nchwc",
        "AveragePool GlobalAveragePool GlobalMaxPool MaxPool ReorderInput ReorderOutput Upsample",
    )
    + names(
        "com.ms.internal.nhwc",
        """
    AveragePool DepthToSpace GlobalAveragePool GlobalLpPool GlobalMaxPool GridSample LRN
    LpPool MaxPool MaxUnpool QLinearAveragePool Resize SpaceToDepth
    """,
    )
    + names("", "SwiGLU")
    + names("ai.onnx.preview.training", "Adagrad Adam Gradient Momentum")
    + names(
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
"""Ops whose inputs are all data (or settings): a constant feeding one is an other constant,
never a parameter, and no warning is due; weight-free ops with inputs that only shape or quantize
them are in `layers`, with those positions. Control flow (If, Scan, BeamSearch)
holds its weights in subgraphs, which are read as graphs of their own. onnx's Attention takes
Q, K and V as activations (the projections are MatMuls before it)."""


ATTRIBUTE_MODELS: frozenset[tuple[str, str]] = frozenset(
    # onnxruntime's experimental onnx-domain ops keep their values in attributes too
    names("", "Affine GivenTensorFill ImageScaler ParametricSoftplus Scale ScaledTanh")
    + names(
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
