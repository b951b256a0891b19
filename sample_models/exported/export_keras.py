"""Export two small Keras 3 (TensorFlow) NHWC models to ONNX with tf2onnx.

Keras 3 does not work with tf2onnx.convert.from_keras, so each model is wrapped
in a tf.function with an input_signature and converted with
tf2onnx.convert.from_function.

Counts come from Keras: model.count_params() and the sizes of
model.trainable_weights / model.non_trainable_weights.  Note that Keras'
count_params() INCLUDES BatchNormalization moving_mean/moving_variance
(non-trainable weights), unlike torch's parameters().

Run:  python sample_models/exported/export_keras.py
"""
from __future__ import annotations

import os
import random
import sys

# tf2onnx's graph optimizer iterates over sets/dicts keyed by strings, so node
# names (and even which constant gets reused) depend on Python's hash seed.
# Re-exec with a fixed PYTHONHASHSEED so re-running gives identical files.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
import tf2onnx  # noqa: E402
import onnx  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import find_tensor_names, out_path, verify, write_json  # noqa: E402

OPSET = 17


def seed_all(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    keras.utils.set_random_seed(seed)


def conv_flatten_dense() -> keras.Model:
    # NHWC 28x28x1 -> conv3 8 -> 26x26x8 -> pool -> 13x13x8 -> conv3 16 -> 11x11x16 -> pool -> 5x5x16
    inp = keras.Input((28, 28, 1), name="input")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inp)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(32, activation="relu", name="fc1")(x)
    out = keras.layers.Dense(10, name="fc2")(x)
    return keras.Model(inp, out, name="keras_conv_flatten_dense")


def conv_gap_dense() -> keras.Model:
    inp = keras.Input((32, 32, 3), name="input")
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv1")(inp)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(10, name="fc")(x)
    return keras.Model(inp, out, name="keras_conv_gap_dense")


def conv1d_flatten_dense() -> keras.Model:
    inp = keras.Input((32, 4), name="input")
    x = keras.layers.Conv1D(8, 3, activation="relu", name="conv1")(inp)
    x = keras.layers.MaxPooling1D(2, name="pool1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(16, activation="relu", name="fc1")(x)
    out = keras.layers.Dense(3, name="fc2")(x)
    return keras.Model(inp, out, name="keras_conv1d_flatten_dense")


def lstm_gru() -> keras.Model:
    inp = keras.Input((12, 8), name="input")
    x = keras.layers.LSTM(24, return_sequences=True, name="lstm")(inp)
    x = keras.layers.GRU(16, name="gru")(x)
    out = keras.layers.Dense(4, name="fc")(x)
    return keras.Model(inp, out, name="keras_lstm_gru")


def separable_cnn() -> keras.Model:
    # MobileNet-like pieces: a full stem conv on RGB, a depthwise conv, a separable conv, then
    # one full 3x3 conv 64 -> 64 (the only conv ONX102 should flag), GAP, Dense
    inp = keras.Input((16, 16, 3), name="input")
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="stem")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.SeparableConv2D(64, 3, padding="same", name="sep")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="full")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(10, name="fc")(x)
    return keras.Model(inp, out, name="keras_separable_cnn")


def mha_block() -> keras.Model:
    # one transformer encoder block: MultiHeadAttention, residual + LayerNorm, GELU MLP
    inp = keras.Input((8, 32), name="input")
    a = keras.layers.MultiHeadAttention(num_heads=2, key_dim=16, name="mha")(inp, inp)
    x = keras.layers.LayerNormalization(name="ln1")(inp + a)
    f = keras.layers.Dense(64, name="up")(x)
    # tanh GELU: the exact one becomes tf.math.erfc, which tf2onnx writes as an op ONNX lacks
    f = keras.layers.Activation(lambda t: keras.activations.gelu(t, approximate=True))(f)
    f = keras.layers.Dense(32, name="down")(f)
    x = keras.layers.LayerNormalization(name="ln2")(x + f)
    x = keras.layers.GlobalAveragePooling1D(name="gap")(x)
    out = keras.layers.Dense(2, name="fc")(x)
    return keras.Model(inp, out, name="keras_mha_block")


SAMPLES = [
    dict(name="keras_conv_flatten_dense", build=conv_flatten_dense, shape=(28, 28, 1),
         flagged=[("fc1", {"C": 16, "H": 5, "W": 5, "units": 32, "layout": "NHWC"})],
         notes="Keras NHWC Conv2D -> MaxPool -> Conv2D -> MaxPool -> Flatten -> Dense. Flatten order is H,W,C "
               "(channels-last); fc1 consumes the flatten of a 5x5x16 tensor."),
    dict(name="keras_conv_gap_dense", build=conv_gap_dense, shape=(32, 32, 3), flagged=[],
         notes="Keras NHWC Conv2D -> BatchNorm -> ReLU -> Conv2D -> GlobalAveragePooling2D -> Dense; NOT flagged. "
               "Keras count_params() includes the BN moving_mean/moving_variance (non-trainable)."),
    dict(name="keras_conv1d_flatten_dense", build=conv1d_flatten_dense, shape=(32, 4),
         flagged=[("fc1", {"C": 8, "L": 15, "units": 16, "layout": "NLC"})],
         notes="Keras Conv1D -> MaxPooling1D -> Flatten -> Dense on [N, 32, 4] sequences: fc1 consumes the "
               "flatten of 15 positions x 8 channels, channels last. tf2onnx writes the Conv1D as "
               "Unsqueeze -> Conv -> Squeeze."),
    dict(name="keras_lstm_gru", build=lstm_gru, shape=(12, 8), flagged=[],
         notes="Keras LSTM(24, return_sequences) -> GRU(16) -> Dense(4) on [N, 12, 8] sequences; NOT flagged."),
    dict(name="keras_separable_cnn", build=separable_cnn, shape=(16, 16, 3), flagged=[], all_weights=True,
         notes="Keras Conv2D(32, 3) -> DepthwiseConv2D(3) -> SeparableConv2D(64, 3) -> Conv2D(64, 3) -> GAP -> "
               "Dense(10) on 16x16 RGB; no dense layer on a spatial input. Only 'full' (3x3, 64 -> 64, group 1) "
               "is a depthwise-separable candidate: the stem has 3 input channels, dw and sep already are."),
    dict(name="keras_mha_block", build=mha_block, shape=(8, 32), flagged=[], all_weights=True,
         notes="Keras MultiHeadAttention(2 heads, key_dim 16) + LayerNorm + Dense(64, GELU) -> Dense(32) + "
               "LayerNorm -> GlobalAveragePooling1D -> Dense(2) on [N, 8, 32]."),
]


def keras_counts(model: keras.Model) -> dict:
    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    non_trainable = int(sum(int(np.prod(w.shape)) for w in model.non_trainable_weights))
    bn = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            bn += int(np.prod(layer.moving_mean.shape)) + int(np.prod(layer.moving_variance.shape))
    return dict(params=int(model.count_params()), trainable=trainable, non_trainable=non_trainable,
                bn_buffers=bn)


def canonicalize_helper_names(mp) -> None:
    """tf2onnx's duplicate-constant merging keeps an arbitrary one of several equal
    integer helper constants (e.g. const_starts__23 vs const_axes__25) - the choice
    varies between runs even with a fixed PYTHONHASHSEED.  Rename the NON-float
    initializers (shape/axes helpers, never weights) by order of first use so the
    file is reproducible.  Weight (float) initializer names are untouched."""
    g = mp.graph
    helpers = {i.name for i in g.initializer if i.data_type not in (onnx.TensorProto.FLOAT,
                                                                     onnx.TensorProto.FLOAT16,
                                                                     onnx.TensorProto.DOUBLE)}
    order = []
    for node in g.node:
        for name in node.input:
            if name in helpers and name not in order:
                order.append(name)
    order += sorted(helpers - set(order))
    mapping = {old: f"tf2onnx_int_const_{k}" for k, old in enumerate(order)}
    for init in g.initializer:
        init.name = mapping.get(init.name, init.name)
    for node in g.node:
        for k, name in enumerate(node.input):
            if name in mapping:
                node.input[k] = mapping[name]
    # keep initializer order stable too
    inits = sorted(g.initializer, key=lambda t: (t.name in mapping.values(), t.name))
    del g.initializer[:]
    g.initializer.extend(inits)


def export(sample: dict) -> dict:
    seed_all(0)
    model = sample["build"]()
    # Make BN statistics non-trivial (seeded) so folding/unfolding is visible.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            rng = np.random.default_rng(1)
            c = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.uniform(-0.5, 0.5, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            layer.beta.assign(rng.uniform(-0.5, 0.5, c).astype("float32"))
    # Keras initialises biases to zeros and tf2onnx then DROPS all-zero biases
    # (Conv without B, MatMul without Add), so the ONNX file would hold fewer
    # values than Keras counts.  Give every bias seeded non-zero values so each
    # Keras weight is present in the graph.
    rng = np.random.default_rng(3)
    for layer in model.layers:
        for b in (getattr(layer, "bias", None), getattr(getattr(layer, "cell", None), "bias", None)):
            if b is not None:
                b.assign(rng.uniform(-0.1, 0.1, tuple(b.shape)).astype("float32"))
    if sample.get("all_weights"):
        # Sub-layer biases (MultiHeadAttention's query/key/value) and LayerNorm's ones/zeros
        # are beyond the loop above: tf2onnx drops zero biases and merges equal constants, so
        # give every weight seeded values of its own (variances positive)
        rng = np.random.default_rng(4)
        for w in model.weights:
            values = rng.uniform(-0.5, 0.5, tuple(w.shape)).astype("float32")
            w.assign(np.abs(values) + 0.5 if "variance" in w.path else values)
    counts = keras_counts(model)

    spec = (tf.TensorSpec((None,) + sample["shape"], tf.float32, name="input"),)

    @tf.function(input_signature=spec)
    def fn(x):
        return {"output": model(x, training=False)}

    fname = sample["name"] + ".onnx"
    path = out_path(fname)
    model_proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=OPSET, output_path=None)
    canonicalize_helper_names(model_proto)
    onnx.save(model_proto, path)

    # numeric check vs keras
    x = np.random.default_rng(2).standard_normal((2,) + sample["shape"]).astype("float32")
    ref = model(x, training=False).numpy()
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    diff = float(np.abs(got - ref).max())
    assert diff < 1e-4, (fname, diff)

    m = onnx.load(path)
    flagged_weights, flagged_shapes, lookup = [], {}, {}
    for layer_name, shp in sample["flagged"]:
        kernel = model.get_layer(layer_name).kernel.numpy()  # Keras Dense kernel is [in, out]
        names = find_tensor_names(m, kernel)
        if not names:
            raise RuntimeError(f"{fname}: no initializer found for {layer_name}.kernel")
        lookup[layer_name + ".kernel"] = names
        for n in names:
            flagged_weights.append(n)
            flagged_shapes[n] = dict(shp)

    in_name = m.graph.input[0].name
    res = dict(
        framework=f"tensorflow {tf.__version__} / keras {keras.__version__}",
        exporter=f"tf2onnx {tf2onnx.__version__} (convert.from_function)",
        opset=OPSET,
        params=counts["params"],
        trainable=counts["trainable"],
        non_trainable=counts["non_trainable"],
        bn_buffers=counts["bn_buffers"],
        notes=sample["notes"] + " " + EXTRA_NOTES.get(sample["name"], ""),
        flagged_weights=flagged_weights,
        flagged_shapes=flagged_shapes,
        flagged_source_params=lookup,
        example_input_shapes={in_name: [2, *sample["shape"]]},
        dynamic_axes={in_name: {"0": "unk__*"}},
        numeric_check_vs_framework="ok (max abs diff < 1e-4 on example input)",
    )
    write_json(out_path(sample["name"] + ".counts.json"), res)
    return dict(file=fname, verify=verify(path, shapes=res["example_input_shapes"]))


EXTRA_NOTES = {
    "keras_conv_flatten_dense":
        "tf2onnx: the NHWC->NCHW input conversion is a Reshape to [N,1,28,28] (C=1, so no Transpose), convs run in "
        "NCHW with kernels stored as OIHW; before Flatten a Transpose perm [0,2,3,1] restores NHWC and the Flatten "
        "is a Reshape whose target shape is computed at run time (Shape->Gather/Slice->Concat->Cast); Dense is "
        "MatMul(kernel [in,out], no transpose) + Add, not Gemm. Zero-valued biases would be dropped by tf2onnx, "
        "so biases are set to seeded non-zero values before export.",
    "keras_conv_gap_dense":
        "tf2onnx folds BatchNormalization into conv1 (conv1, use_bias=False, gains a bias '.../bn1_1/batchnorm/sub:0'; "
        "kernel renamed '.../merged_input:0'), so gamma/beta/moving stats are not separate tensors; input Transpose "
        "perm [0,3,1,2]; GlobalAveragePooling2D -> GlobalAveragePool + Squeeze; Dense -> MatMul + Add.",
}


def export_refused() -> None:
    """refused/keras_gelu_erfc.onnx: Dense(16, exact GELU) -> Dense(2). tf2onnx meets
    tf.math.erfc, has no conversion for it and writes an `Erfc` node in the ai.onnx domain,
    which no runtime loads. Kept out of the manifest (nothing can run it); its counts JSON
    records Keras's count and onnxruntime's refusal."""
    seed_all(0)
    inp = keras.Input((8,), name="input")
    x = keras.layers.Dense(16, activation="gelu", name="up")(inp)
    model = keras.Model(inp, keras.layers.Dense(2, name="fc")(x), name="keras_gelu_erfc")
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.uniform(-0.1, 0.1, tuple(layer.bias.shape)).astype("float32"))
    spec = (tf.TensorSpec((None, 8), tf.float32, name="input"),)

    @tf.function(input_signature=spec)
    def fn(x):
        return {"output": model(x, training=False)}

    model_proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=OPSET)
    canonicalize_helper_names(model_proto)
    os.makedirs(out_path("refused"), exist_ok=True)
    path = out_path(os.path.join("refused", "keras_gelu_erfc.onnx"))
    onnx.save(model_proto, path)
    res = verify(path, shapes={"input": [2, 8]})
    write_json(out_path(os.path.join("refused", "keras_gelu_erfc.counts.json")), dict(
        framework=f"tensorflow {tf.__version__} / keras {keras.__version__}",
        exporter=f"tf2onnx {tf2onnx.__version__} (convert.from_function)",
        params=int(model.count_params()), onnxruntime=res["onnxruntime"],
        erfc_nodes=[n.name for n in model_proto.graph.node if n.op_type == "Erfc"],
    ))
    print(f"refused/keras_gelu_erfc.onnx: onnxruntime {res['onnxruntime'][:80]}")


def main() -> int:
    print(f"tensorflow {tf.__version__} keras {keras.__version__} tf2onnx {tf2onnx.__version__}")
    only = set(sys.argv[1:])  # names to export (all when none): re-exports stay byte-stable
    if not only or "keras_gelu_erfc" in only:
        export_refused()
    for s in SAMPLES:
        if only and s["name"] not in only:
            continue
        try:
            r = export(s)
            print(f"OK   {r['file']}: checker={r['verify']['checker']} ort={r['verify']['onnxruntime']}")
        except Exception as exc:  # noqa: BLE001
            print(f"FAIL {s['name']}: {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
