"""Export hand-written PaddlePaddle models to ONNX with paddle.onnx.export (paddle2onnx).

Counts come from Paddle itself (model.parameters()).  Paddle keeps BatchNorm's
running statistics (`_mean`, `_variance`) as *parameters* with
stop_gradient=True / trainable=False, so `sum(p.numel() for p in
model.parameters())` would include them.  To match the torch convention of the
other counts files, `params` counts only the trainable parameters (not
stop_gradient) and the BN statistics are reported as `bn_buffers`;
`params_incl_bn_stats` keeps Paddle's raw parameters() total.

paddle.onnx.export runs paddle.jit.save -> paddle2onnx -> Polygraphy constant
folding.  paddle2onnx forces POLYGRAPHY_AUTOINSTALL_DEPS=1, i.e. Polygraphy would
pip-install onnx_graphsurgeon / sympy at run time if they are missing; this
script refuses to run without them instead (install them with pip first).
paddle.onnx.export also swallows exceptions (it only logs them), so the script
deletes the target first and checks that a new file was written.

Run:  /work/venv-paddle/bin/python sample_models/exported/export_paddle.py
"""
from __future__ import annotations

import importlib
import os
import random
import sys

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

for _mod in ("polygraphy", "onnx_graphsurgeon", "sympy", "onnxruntime.tools.symbolic_shape_infer"):
    try:
        importlib.import_module(_mod)
    except ImportError:  # pragma: no cover - environment check
        sys.exit(f"missing {_mod}: pip install onnx_graphsurgeon sympy (paddle2onnx's Polygraphy folding "
                 f"would otherwise try to pip-install it at run time)")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import paddle  # noqa: E402
import paddle2onnx  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import find_tensor_names, out_path, verify, write_json  # noqa: E402

OPSET = 17
nn = paddle.nn


def seed_all(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


class LeNet(nn.Layer):
    """1x28x28 -> conv5(pad2) 6 -> pool -> 14x14 -> conv5 16 -> 10x10 -> pool -> 16x5x5 -> Flatten -> 120 -> 84 -> 10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2D(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2D(6, 16, 5)
        self.pool = nn.MaxPool2D(2, 2)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


class BnGap(nn.Layer):
    """3x32x32 -> conv3 8 (no bias) -> BN -> ReLU -> conv3 s2 16 (no bias) -> BN -> ReLU
    -> AdaptiveAvgPool2D(1) -> Flatten -> Linear(16, 10).  Not flagged."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2D(3, 8, 3, padding=1, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(8)
        self.conv2 = nn.Conv2D(8, 16, 3, stride=2, padding=1, bias_attr=False)
        self.bn2 = nn.BatchNorm2D(16)
        self.relu = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.fc(self.flatten(self.gap(x)))


class MlpFlat(nn.Layer):
    """[N,1,28,28] -> Flatten -> Linear(784, 64) -> ReLU -> Linear(64, 10)."""

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(28 * 28, 64)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


SAMPLES = [
    dict(name="paddle_lenet", build=LeNet, shape=(1, 28, 28),
         flagged=[("fc1", {"C": 16, "H": 5, "W": 5, "units": 120})],
         notes="Paddle LeNet: Conv2D-ReLU-MaxPool x2 -> nn.Flatten -> Linear(400,120) -> Linear(120,84) -> "
               "Linear(84,10) on 1x28x28, dynamic N; fc1 consumes the flatten of a 16x5x5 map."),
    dict(name="paddle_bn_gap", build=BnGap, shape=(3, 32, 32), flagged=[],
         notes="Paddle Conv2D(no bias)-BatchNorm2D-ReLU x2 -> AdaptiveAvgPool2D(1) -> Flatten -> Linear(16,10), "
               "eval mode; NOT flagged. BN _mean/_variance are Paddle parameters with stop_gradient=True "
               "(trainable=False): reported as bn_buffers (48) and excluded from params, like torch's running stats; "
               "params_incl_bn_stats is Paddle's raw sum over parameters()."),
    dict(name="paddle_mlp_flat", build=MlpFlat, shape=(1, 28, 28),
         flagged=[("fc1", {"C": 1, "H": 28, "W": 28, "units": 64})],
         notes="Paddle MLP on images: input [N,1,28,28] -> nn.Flatten -> Linear(784,64) -> ReLU -> Linear(64,10); "
               "fc1 consumes the flattened 1x28x28 image."),
]


def randomize(model: nn.Layer) -> None:
    """Seeded non-trivial values for every parameter (Paddle initialises biases to 0 and BN to
    1/0/0/1; exporters may merge or drop such constants, and the numeric check would be weak)."""
    rng = np.random.default_rng(1)
    for name, p in model.named_parameters():
        shape = tuple(p.shape)
        if name.endswith("_variance"):
            v = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("_mean"):
            v = rng.uniform(-0.5, 0.5, shape)
        elif ".bn" in "." + name and name.endswith("weight"):
            v = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("bias"):
            v = rng.uniform(-0.1, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
            v = rng.uniform(-1, 1, shape) / np.sqrt(fan_in)
        p.set_value(v.astype("float32"))


def paddle_counts(model: nn.Layer) -> dict:
    params = trainable = bn = total = 0
    bn_stat_ids = set()
    for layer in model.sublayers():
        if isinstance(layer, nn.layer.norm._BatchNormBase):
            bn_stat_ids.add(id(layer._mean))
            bn_stat_ids.add(id(layer._variance))
            bn += int(layer._mean.numel()) + int(layer._variance.numel())
    for p in model.parameters():  # parameters() de-duplicates shared parameters
        n = int(p.numel())
        total += n
        if id(p) in bn_stat_ids:
            assert p.stop_gradient and not p.trainable
            continue
        if not p.stop_gradient:
            params += n
        if p.trainable:
            trainable += n
    assert total == params + bn, (total, params, bn)
    return dict(params=params, trainable=trainable, bn_buffers=bn, params_incl_bn_stats=total)


def describe_export(mp: onnx.ModelProto, model: nn.Layer) -> dict:
    """Where each Paddle parameter ended up in the ONNX file (name lookup only)."""
    where = {}
    for name, p in model.named_parameters():
        w = p.numpy()
        hits = find_tensor_names(mp, w)
        if not hits:  # e.g. conv bias stored reshaped to [1,C,1,1]
            hits = [i.name + " (reshaped)" for i in mp.graph.initializer
                    if int(np.prod(i.dims)) == w.size
                    and np.array_equal(onnx.numpy_helper.to_array(i).ravel(), w.ravel())]
        where[f"{name} [{p.name}]"] = hits
    return where


def export(sample: dict) -> dict:
    seed_all(0)
    # Paddle names parameters from a global counter (conv2d_0.w_0, linear_1.b_0, ...), and those
    # names become the ONNX initializer names: give every model its own counter.
    with paddle.utils.unique_name.guard():
        model = sample["build"]()
    randomize(model)
    model.eval()
    counts = paddle_counts(model)

    fname = sample["name"] + ".onnx"
    path = out_path(fname)
    if os.path.exists(path):
        os.remove(path)
    spec = [paddle.static.InputSpec([None, *sample["shape"]], "float32", "input")]
    paddle.onnx.export(model, path[:-5], input_spec=spec, opset_version=OPSET)
    if not os.path.exists(path):
        raise RuntimeError(f"{fname}: paddle.onnx.export wrote nothing (see the logged error above)")

    mp = onnx.load(path)
    onnx.checker.check_model(mp, full_check=True)
    opset = {o.domain or "ai.onnx": o.version for o in mp.opset_import}
    assert opset.get("ai.onnx") == OPSET, opset

    # numeric check vs paddle
    x = np.random.default_rng(2).standard_normal((2, *sample["shape"])).astype("float32")
    ref = model(paddle.to_tensor(x)).numpy()
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    diff = float(np.abs(got - ref).max())
    assert got.shape == ref.shape and diff < 1e-4, (fname, diff)

    flagged_weights, flagged_shapes, lookup = [], {}, {}
    for layer_name, shp in sample["flagged"]:
        weight = getattr(model, layer_name).weight.numpy()  # Paddle Linear weight is [in, out]
        names = find_tensor_names(mp, weight)
        if not names:
            raise RuntimeError(f"{fname}: no initializer found for {layer_name}.weight")
        lookup[layer_name + ".weight"] = names
        for n in names:
            flagged_weights.append(n)
            flagged_shapes[n] = dict(shp)

    in_name = mp.graph.input[0].name
    res = dict(
        framework=f"paddlepaddle {paddle.__version__}",
        exporter=f"paddle2onnx {paddle2onnx.__version__} (paddle.onnx.export, Polygraphy constant folding)",
        opset=OPSET,
        params=counts["params"],
        trainable=counts["trainable"],
        bn_buffers=counts["bn_buffers"],
        params_incl_bn_stats=counts["params_incl_bn_stats"],
        notes=sample["notes"] + " " + EXTRA_NOTES.get(sample["name"], ""),
        flagged_weights=flagged_weights,
        flagged_shapes=flagged_shapes,
        flagged_source_params=lookup,
        paddle_param_to_onnx=describe_export(mp, model),
        example_input_shapes={in_name: [2, *sample["shape"]]},
        model_mode="eval",
        dynamic_axes={in_name: {"0": mp.graph.input[0].type.tensor_type.shape.dim[0].dim_param}},
        numeric_check_vs_paddle="ok (max abs diff < 1e-4 on example input)",
    )
    write_json(out_path(sample["name"] + ".counts.json"), res)
    return dict(file=fname, diff=diff, verify=verify(path, shapes=res["example_input_shapes"]))


COMMON_NOTES = ("paddle2onnx writes Linear as MatMul with the Paddle weight as stored ([in, out], no transpose) + a "
                "separate Add of the bias (followed by an Identity), never Gemm; nn.Flatten is a Reshape with a "
                "run-time shape (Shape->Slice->Concat with [-1]); weight initializers keep Paddle's unique parameter "
                "names (linear_0.w_0, ...), not the attribute names (fc1.weight); the batch dim is "
                "'DynamicDimension.0' and the output is 'fetch_name_0'.")
CONV_BIAS_NOTES = (" Conv2D bias is NOT the Conv's B input: Conv -> Add(initializer [1,C,1,1]) -> Identity, the bias "
                   "initializer renamed 'p2o.pd_op.reshape.N.0' (Polygraphy folded paddle2onnx's Reshape of "
                   "conv2d_N.b_0).")

EXTRA_NOTES = {
    "paddle_lenet": COMMON_NOTES + CONV_BIAS_NOTES,
    "paddle_bn_gap": COMMON_NOTES + " BatchNorm is NOT folded: BatchNormalization(training_mode=0) nodes keep "
                                    "scale/bias/mean/var as initializers (batch_norm2d_N.w_0/.b_0/.w_1/.w_2); "
                                    "AdaptiveAvgPool2D(1) becomes GlobalAveragePool.",
    "paddle_mlp_flat": COMMON_NOTES,
}


def main() -> int:
    print(f"paddlepaddle {paddle.__version__} paddle2onnx {paddle2onnx.__version__} onnx {onnx.__version__}")
    rc = 0
    for s in SAMPLES:
        try:
            r = export(s)
            print(f"OK   {r['file']}: diff={r['diff']:.2e} checker={r['verify']['checker']} "
                  f"ort={r['verify']['onnxruntime']}")
        except Exception as exc:  # noqa: BLE001
            print(f"FAIL {s['name']}: {type(exc).__name__}: {exc}")
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
