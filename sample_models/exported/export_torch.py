"""Export small PyTorch models to ONNX with the TorchScript exporter
(dynamo=False, opset 17) and, where it works, the dynamo exporter (dynamo=True).

For every produced `<name>.<exporter>.onnx` a `<name>.<exporter>.counts.json`
is written with the parameter counts taken FROM TORCH (model.parameters(),
BatchNorm buffers), never from the ONNX file.  `flagged_weights` lists the
initializer(s) holding the weight of each Linear layer that - by construction
of the architecture below - consumes a flattened conv/image tensor; the ONNX
file is only consulted to find the name the exporter gave that weight.

Run:  python sample_models/exported/export_torch.py
"""
from __future__ import annotations

import io
import logging
import os
import random
import sys
import contextlib
import traceback
import warnings

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import find_tensor_names, out_path, verify, write_json  # noqa: E402

import onnx  # noqa: E402

TORCH_OPSET = 17
warnings.filterwarnings("ignore")
# "torchvision is not installed. Skipping torchvision::nms" etc. from the dynamo registry
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)


def seed_all(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------
# Architectures.  `flagged` = list of (module attribute path, shape dict) for
# every Linear applied to a flattened spatial tensor.
# --------------------------------------------------------------------------
class LeNet5(nn.Module):
    # 1x32x32 -> conv5 -> 6x28x28 -> pool -> 6x14x14 -> conv5 -> 16x10x10 -> pool -> 16x5x5
    flagged = [("fc1", {"C": 16, "H": 5, "W": 5, "units": 120})]

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool1(torch.relu(self.conv1(x)))
        x = self.pool2(torch.relu(self.conv2(x)))
        x = self.flatten(x)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


class SmallVGG(nn.Module):
    # 3x32x32 -> [conv,conv,pool] 16x16x16 -> [conv,pool] 32x8x8 -> [conv,pool] 32x4x4
    flagged = [("classifier.0", {"C": 32, "H": 4, "W": 4, "units": 64})]

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(32 * 4 * 4, 64), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(64, 10),
        )

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


class MLPFlatNCHW(nn.Module):
    # input [N,1,28,28] -> Flatten -> Linear(784, 64): dense on a flattened image
    flagged = [("fc1", {"C": 1, "H": 28, "W": 28, "units": 64})]

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(28 * 28, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(self.flatten(x))))


class MLPFlatNHW(MLPFlatNCHW):
    # input [N,28,28] (no channel axis) -> Flatten -> Linear(784, 64).
    # Architecturally still a dense layer on a flattened 28x28 image; there is
    # no C axis, so the shape is recorded as H/W only.
    flagged = [("fc1", {"H": 28, "W": 28, "units": 64})]


class DWSepGAP(nn.Module):
    # depthwise-separable blocks, global average pool -> Linear: NOT flagged
    flagged = []

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.dw1 = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pw1 = nn.Conv2d(16, 32, 1)
        self.dw2 = nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=32)
        self.pw2 = nn.Conv2d(32, 64, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.pw1(torch.relu(self.dw1(x))))
        x = torch.relu(self.pw2(torch.relu(self.dw2(x))))
        x = self.pool(x).flatten(1)
        return self.fc(x)


class TransformerEnc(nn.Module):
    # one encoder layer on [N, L, 32] tokens + mean-pool head: NOT flagged
    flagged = []

    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64,
                                                dropout=0.0, batch_first=True)
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        return self.head(self.layer(x).mean(dim=1))


class LSTMNet(nn.Module):
    flagged = []

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(input_size=16, hidden_size=32, batch_first=True)
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y[:, -1, :])


class NormsNet(nn.Module):
    """GroupNorm and InstanceNorm with and without affine: torch writes all three as
    InstanceNormalization, adding a scale of ones and a bias of zeros where it has none."""
    flagged = []

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.gn = nn.GroupNorm(4, 16)
        self.c2 = nn.Conv2d(16, 16, 3, padding=1)
        self.inorm = nn.InstanceNorm2d(16, affine=True)
        self.c3 = nn.Conv2d(16, 8, 3, padding=1)
        self.inorm2 = nn.InstanceNorm2d(8, affine=False)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.relu(self.gn(self.c1(x)))
        x = torch.relu(self.inorm(self.c2(x)))
        x = self.inorm2(self.c3(x))
        return self.fc(x.mean(dim=(2, 3)))


class GRUNet(nn.Module):
    flagged = []

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(input_size=16, hidden_size=32, batch_first=True)
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y[:, -1, :])


class TiedEmbedding(nn.Module):
    # nn.Embedding(100,32) and an output Linear(32,100) whose weight IS the
    # embedding weight (Parameter shared -> counted once by parameters()).
    flagged = []

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 32)
        self.proj = nn.Linear(32, 32)
        self.out = nn.Linear(32, 100, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, tokens):
        return self.out(torch.tanh(self.proj(self.emb(tokens))))


class Conv1dAudio(nn.Module):
    # [N,1,256] -> conv9/s2 -> 8x124 -> pool -> 8x62 -> conv5 -> 16x58 -> pool -> 16x29
    flagged = [("fc1", {"C": 16, "L": 29, "units": 32})]

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 8, 9, stride=2)
        self.pool1 = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(8, 16, 5)
        self.pool2 = nn.MaxPool1d(2)
        self.fc1 = nn.Linear(16 * 29, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        x = self.pool1(torch.relu(self.conv1(x)))
        x = self.pool2(torch.relu(self.conv2(x)))
        x = x.flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


class ConvTransposeDecoder(nn.Module):
    # latent [N,16] -> Linear -> reshape 32x4x4 -> ConvT -> 16x8x8 -> ConvT -> 1x16x16.
    # The Linear acts on a latent vector (it PRODUCES a spatial tensor): NOT flagged.
    flagged = []

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 32 * 4 * 4)
        self.up1 = nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1)
        self.up2 = nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1)

    def forward(self, z):
        x = self.fc(z).view(-1, 32, 4, 4)
        x = torch.relu(self.up1(torch.relu(x)))
        return torch.sigmoid(self.up2(x))


class BNNet(nn.Module):
    # conv-BN-relu x2, global average pool -> Linear: NOT flagged
    flagged = []

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, stride=2)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(self.pool(x).flatten(1))


def _break_constant_params(model: nn.Module) -> None:
    """Default inits leave some parameters constant (LayerNorm weight=1/bias=0,
    MultiheadAttention biases=0, BN weight=1/bias=0).  Both torch exporters
    de-duplicate initializers with identical VALUES, which would make the ONNX
    graph hold fewer values than torch counts.  Give every constant-valued
    parameter small seeded noise so each parameter is stored exactly once
    (the `*_defaultinit` sample keeps the default init on purpose)."""
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() > 1 and bool((p == p.flatten()[0]).all()):
                p.add_(0.01 * torch.randn(p.shape, generator=g))


def _randomize_bn(model: nn.Module) -> None:
    """Give BN non-trivial running stats/affine values (seeded) so folding is visible."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


# --------------------------------------------------------------------------
# Sample table:
#  name, class, example input (tensor factory), input name, dynamic axes,
#  mode ('eval' | 'train'), torchscript extra kwargs, notes
# --------------------------------------------------------------------------
def _f(*shape):
    return lambda: torch.randn(*shape)


SAMPLES = [
    dict(name="lenet5", cls=LeNet5, example=_f(2, 1, 32, 32), dyn={0: "N"},
         notes="LeNet-5 on 1x32x32; fc1 consumes flatten of 16x5x5."),
    dict(name="small_vgg", cls=SmallVGG, example=_f(2, 3, 32, 32), dyn={0: "N"},
         notes="VGG/AlexNet-style conv stack, torch.flatten -> Linear head (Dropout is identity in eval)."),
    dict(name="mlp_flat_nchw", cls=MLPFlatNCHW, example=_f(2, 1, 28, 28), dyn={0: "N"},
         notes="MLP on a flattened [N,1,28,28] image."),
    dict(name="mlp_flat_nhw", cls=MLPFlatNHW, example=_f(2, 28, 28), dyn=None,
         notes="Same MLP but input is rank-3 [N,28,28] (no channel axis); an analyzer could read this as "
               "[N,L=28,C=28] - architecturally it is a 28x28 image (static batch here)."),
    dict(name="dwsep_gap", cls=DWSepGAP, example=_f(2, 3, 32, 32), dyn={0: "N", 2: "H", 3: "W"},
         notes="Depthwise-separable convs + global average pooling -> Linear; dynamic N/H/W; must NOT be flagged."),
    dict(name="transformer_encoder", cls=TransformerEnc, example=_f(2, 10, 32), dyn={0: "N", 1: "L"},
         notes="nn.TransformerEncoderLayer(d_model=32, nhead=4, ff=64) + mean-pool + Linear; must NOT be flagged."),
    dict(name="transformer_encoder_defaultinit", cls=TransformerEnc, example=_f(2, 10, 32),
         dyn={0: "N", 1: "L"}, default_init=True,
         notes="Same encoder layer with torch's DEFAULT init: in_proj_bias/out_proj.bias/LayerNorm biases are all "
               "zeros and LayerNorm weights all ones, and the exporters de-duplicate initializers with equal values, "
               "so the ONNX file stores fewer values than torch's parameter count (see params_distinct_values)."),
    dict(name="lstm", cls=LSTMNet, example=_f(2, 12, 16), dyn={0: "N"},
         notes="nn.LSTM(16->32) + Linear on last step; torch has separate b_ih and b_hh (counted both)."),
    dict(name="gru", cls=GRUNet, example=_f(2, 12, 16), dyn={0: "N"},
         notes="nn.GRU(16->32) + Linear on last step; torch has separate b_ih and b_hh (counted both)."),
    dict(name="lstm_static", cls=LSTMNet, example=_f(2, 12, 16), dyn=None,
         notes="The lstm sample with a static batch: torchscript broadcasts the zero initial states with "
               "Expand to a batch size read by Shape, and feeds them to LSTM initial_h/initial_c."),
    dict(name="gru_static", cls=GRUNet, example=_f(2, 12, 16), dyn=None,
         notes="The gru sample with a static batch: the zero initial state goes through Expand."),
    dict(name="norms", cls=NormsNet, example=_f(2, 3, 16, 16), dyn={0: "N"},
         notes="GroupNorm(4, 16), InstanceNorm2d(16, affine=True), InstanceNorm2d(8): the exporters add "
               "ones/zeros scale and bias to InstanceNormalization for GroupNorm (size 4, its own affine "
               "follows as Mul/Add) and for the affine-free InstanceNorm (size 8); torch does not count them."),
    dict(name="tied_embedding", cls=TiedEmbedding,
         example=lambda: torch.randint(0, 100, (2, 7), dtype=torch.int64), dyn={0: "N", 1: "L"},
         notes="out.weight IS emb.weight (one Parameter, 3200 values counted once)."),
    dict(name="conv1d_audio", cls=Conv1dAudio, example=_f(2, 1, 256), dyn={0: "N"},
         notes="Conv1d audio net; fc1 consumes flatten of 16x29."),
    dict(name="convtranspose_decoder", cls=ConvTransposeDecoder, example=_f(2, 16), dyn={0: "N"},
         notes="Linear(latent) -> view 32x4x4 -> ConvTranspose2d x2; Linear is BEFORE the spatial part: NOT flagged."),
    dict(name="bn_net_eval", cls=BNNet, example=_f(2, 3, 16, 16), dyn={0: "N"}, mode="eval",
         notes="BatchNorm net in eval mode, default export settings."),
    dict(name="bn_net_eval_nofold", cls=BNNet, example=_f(2, 3, 16, 16), dyn={0: "N"}, mode="eval",
         ts_kwargs=dict(do_constant_folding=False), dynamo_kwargs=dict(optimize=False),
         notes="BatchNorm net in eval mode exported with do_constant_folding=False (torchscript) / optimize=False "
               "(dynamo): BatchNormalization(training_mode=0) stays, with running_mean/var initializers."),
    dict(name="bn_net_train", cls=BNNet, example=_f(2, 3, 16, 16), dyn={0: "N"}, mode="train",
         ts_kwargs=dict(training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False),
         notes="BatchNorm net exported with training=TrainingMode.TRAINING (BN unfolded, running stats kept)."),
]


def torch_counts(model: nn.Module) -> dict:
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    bn_buffers = 0
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            bn_buffers += m.running_mean.numel() + m.running_var.numel()
    # Framework-side value de-duplication (what the exporters' initializer
    # de-duplication can collapse): parameters with identical shape+values.
    distinct = []
    for p in model.parameters():
        if not any(q.shape == p.shape and torch.equal(q, p) for q in distinct):
            distinct.append(p.detach())
    return dict(params=int(params), trainable=int(trainable), bn_buffers=int(bn_buffers),
                params_distinct_values=int(sum(p.numel() for p in distinct)))


def get_sub(model: nn.Module, path: str) -> nn.Module:
    m = model
    for part in path.split("."):
        m = getattr(m, part)
    return m


def check_flagged_shapes(model: nn.Module, sample: dict, x: torch.Tensor) -> None:
    """Sanity-check the hand-declared C/H/W(L) against the real pre-flatten tensor:
    in_features of the flagged Linear must equal the product."""
    for path, shp in model.flagged:
        lin = get_sub(model, path)
        prod = 1
        for k in ("C", "H", "W", "L"):
            prod *= shp.get(k, 1)
        assert lin.in_features == prod, (sample["name"], lin.in_features, prod)
        assert lin.out_features == shp["units"], (sample["name"], lin.out_features)


def build(sample: dict) -> tuple:
    seed_all(0)
    model = sample["cls"]()
    if not sample.get("default_init"):
        _break_constant_params(model)
    if sample["cls"] is BNNet:
        _randomize_bn(model)
    if sample.get("mode", "eval") == "train":
        model.train()
    else:
        model.eval()
    seed_all(1)
    x = sample["example"]()
    return model, x


def do_export(sample: dict, exporter: str) -> dict:
    name = sample["name"]
    model, x = build(sample)
    check_flagged_shapes(model, sample, x)
    counts_before = torch_counts(model)
    fname = f"{name}.{exporter}.onnx"
    path = out_path(fname)
    dyn = sample.get("dyn")
    input_names = ["input"]
    output_names = ["output"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        if exporter == "torchscript":
            kw = dict(sample.get("ts_kwargs", {}))
            torch.onnx.export(
                model, (x,), path, dynamo=False, opset_version=TORCH_OPSET,
                input_names=input_names, output_names=output_names,
                dynamic_axes=({"input": dyn} if dyn else None), **kw)
        else:
            dynamic_shapes = None
            if dyn:
                dynamic_shapes = ({i: torch.export.Dim(n, min=1, max=4096) if n != "N"
                                   else torch.export.Dim("N", min=1, max=1024)
                                   for i, n in dyn.items()},)
            prog = torch.onnx.export(
                model, (x,), None, dynamo=True, input_names=input_names,
                output_names=output_names, dynamic_shapes=dynamic_shapes,
                external_data=False, verbose=False, report=False,
                **sample.get("dynamo_kwargs", {}))
            prog.save(path, external_data=False)
    # Re-save with a fixed producer so repeated runs give byte-identical files.
    m = onnx.load(path)
    m.producer_name = m.producer_name or "pytorch"
    onnx.save(m, path)

    # Numeric check: ORT output must match torch in the SAME mode the model was
    # exported in (catches e.g. an exporter silently switching train -> eval).
    ref_model, _ = build(sample)
    with torch.no_grad():
        ref = ref_model(x).detach().numpy()
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    diff = float(np.abs(got - ref).max())
    if diff > 1e-4:
        hint = ""
        if sample.get("mode") == "train" and exporter == "dynamo":
            hint = (" - the dynamo exporter does not honour train mode: it produced an inference graph "
                    "(BN folded into Conv; output equals eval-mode torch)")
        raise RuntimeError(f"ONNX output differs from torch ({sample.get('mode', 'eval')} mode): "
                           f"max|diff|={diff:.3g}{hint}")

    # BN stats might have been updated by a training-mode trace; counts come
    # from the module *structure*, which export does not change.
    counts = torch_counts(model)
    assert counts["params"] == counts_before["params"]

    flagged_weights, flagged_shapes, lookup = [], {}, {}
    for mod_path, shp in model.flagged:
        w = get_sub(model, mod_path).weight.detach().numpy()
        names = find_tensor_names(m, w)
        lookup[mod_path + ".weight"] = names
        if not names:
            raise RuntimeError(f"{fname}: no initializer found for {mod_path}.weight")
        for n in names:
            flagged_weights.append(n)
            flagged_shapes[n] = dict(shp)

    notes = sample["notes"]
    extra = EXTRA_NOTES.get((name, exporter))
    if extra:
        notes += " " + extra
    shapes = {"input": list(x.shape)}
    res = dict(
        framework=f"torch {torch.__version__}",
        exporter=exporter,
        opset=[o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0],
        params=counts["params"],
        trainable=counts["trainable"],
        bn_buffers=counts["bn_buffers"],
        params_distinct_values=counts["params_distinct_values"],
        notes=notes,
        flagged_weights=flagged_weights,
        flagged_shapes=flagged_shapes,
        flagged_source_params=lookup,
        example_input_shapes=shapes,
        model_mode=sample.get("mode", "eval"),
        dynamic_axes={"input": {str(k): v for k, v in dyn.items()}} if dyn else None,
        numeric_check_vs_torch="ok (max abs diff < 1e-4 on example input)",
    )
    write_json(out_path(f"{name}.{exporter}.counts.json"), res)
    v = verify(path, shapes=shapes, int_high=100)
    return dict(file=fname, verify=v, log=buf.getvalue())


# Observations about how each exporter wrote the layers (filled after inspection;
# appended to the counts JSON notes).
_DYN = ("dynamo: opset 20; Flatten written as Reshape with an INT64 shape initializer (val_*); "
        "Linear on 2-D input -> Gemm(transB=1) keeping the torch name.")
_DYN_GAP = " AdaptiveAvgPool2d(1) written as ReduceMean(axes=[-1,-2] as INT64 initializer, keepdims=1) + Reshape, not GlobalAveragePool."
EXTRA_NOTES = {
    ("lenet5", "dynamo"): _DYN,
    ("small_vgg", "dynamo"): _DYN,
    ("mlp_flat_nchw", "dynamo"): _DYN,
    ("mlp_flat_nhw", "dynamo"): _DYN,
    ("conv1d_audio", "dynamo"): _DYN,
    ("dwsep_gap", "dynamo"): _DYN + _DYN_GAP,
    ("dwsep_gap", "torchscript"): "GlobalAveragePool -> Flatten -> Gemm.",
    ("lenet5", "torchscript"): "Flatten(axis=1) -> Gemm(transB=1) with weight initializer named fc1.weight.",
    ("transformer_encoder", "torchscript"):
        "in_proj_weight and linear1/linear2 weights appear ONLY as constant-folded transposed copies "
        "(onnx::MatMul_* [in,out]) feeding MatMul(+Add) - torch names lost; out_proj and head are Gemm. "
        "Attention scaling computed at run time from Shape/Sqrt with a float Constant node.",
    ("transformer_encoder", "dynamo"):
        "in_proj_weight and linear1/linear2 weights appear ONLY as transposed copies (val_* [in,out]) feeding "
        "MatMul(+Add); extra float32 [1] initializer val_71 (=1/sqrt(sqrt(head_dim)) attention scale, applied to "
        "q and k) is NOT a parameter; plus INT64 shape initializers.",
    ("lstm", "torchscript"):
        "LSTM re-packed to ONNX LSTM: W [1,4H,I], R [1,4H,H], B [1,8H] (bias_ih and bias_hh concatenated, gate "
        "order i,f,g,o -> i,o,f,c), names onnx::LSTM_*; value count identical to torch.",
    ("lstm", "dynamo"): "Same re-packing into ONNX LSTM W/R/B, anonymous val_* names; INT64 helper initializers.",
    ("gru", "torchscript"):
        "GRU re-packed to ONNX GRU(linear_before_reset=1): W [1,3H,I], R [1,3H,H], B [1,6H] (gate order "
        "r,z,n -> z,r,h), names onnx::GRU_*; value count identical to torch.",
    ("gru", "dynamo"): "Same re-packing into ONNX GRU W/R/B, anonymous val_* names; INT64 helper initializers.",
    ("tied_embedding", "torchscript"):
        "The tied weight is stored TWICE: emb.weight [100,32] (Gather) and a constant-folded transposed copy "
        "onnx::MatMul_* [32,100] for the output MatMul; proj is MatMul(W^T copy)+Add because the input is 3-D.",
    ("tied_embedding", "dynamo"):
        "The tied weight is stored TWICE: out.weight [100,32] (Gather) and a transposed copy val_* [32,100] for "
        "the output MatMul; proj is MatMul(val_* W^T copy)+Add.",
    ("convtranspose_decoder", "torchscript"): "Gemm(fc) -> Reshape(Constant [4]) -> ConvTranspose x2.",
    ("bn_net_eval", "torchscript"):
        "BN FOLDED into Conv by the exporter: no BatchNormalization; conv1 (bias=False in torch) gains a bias; "
        "Conv weights renamed onnx::Conv_*; BN affine params and running stats are gone as separate tensors.",
    ("bn_net_eval", "dynamo"):
        "BN FOLDED into Conv by the onnxscript optimizer: no BatchNormalization; new initializer "
        "conv1.weight_bias for the bias-less conv1; ReduceMean+Reshape instead of GlobalAveragePool.",
    ("bn_net_eval_nofold", "dynamo"):
        "optimize=False: unoptimized graph with Constant/CastLike/Expand/Shape helper nodes around the head.",
    ("bn_net_train", "torchscript"):
        "BatchNormalization(training_mode=1) with 3 outputs (Y, running_mean, running_var); running stats are "
        "initializers (values already updated once by the export trace).",
}


def main() -> int:
    print(f"torch {torch.__version__}")
    failures = []
    for sample in SAMPLES:
        for exporter in ("torchscript", "dynamo"):
            tag = f"{sample['name']}.{exporter}"
            try:
                r = do_export(sample, exporter)
                print(f"OK   {tag}: checker={r['verify']['checker']} ort={r['verify']['onnxruntime']}")
                if "FAIL" in (r["verify"]["checker"] + r["verify"]["onnxruntime"]):
                    failures.append((tag, str(r["verify"])))
            except Exception as exc:  # noqa: BLE001
                msg = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                print(f"SKIP {tag}: {msg}")
                for suffix in (".onnx", ".counts.json"):
                    p = out_path(tag + suffix)
                    if os.path.exists(p):
                        os.remove(p)
                failures.append((tag, msg))
                if os.environ.get("EXPORT_DEBUG"):
                    traceback.print_exc()
    print(f"{len(failures)} variant(s) failed/skipped")
    for tag, msg in failures:
        print(f"  {tag}: {msg[:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
