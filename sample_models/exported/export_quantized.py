"""Quantized / reduced-precision variants of one small float conv net.

Float model (torch, TorchScript exporter, opset 17):
    [N,1,16,16] -> Conv(1->8,3,pad1)-ReLU-MaxPool2 -> 8x8x8
                -> Conv(8->16,3,pad1)-ReLU-MaxPool2 -> 16x4x4
                -> Flatten(256) -> Linear(256,32)-ReLU -> Linear(32,10)
fc1 is a dense layer on a flattened 16x4x4 conv tensor (flagged).

Variants written next to this script:
  quant_float.onnx                 float32 reference (Gemm head)
  quant_dynamic.onnx               onnxruntime quantize_dynamic
  quant_dynamic_per_channel.onnx   the same, per-channel weight scales
  quant_static_qdq.onnx            quantize_static, QuantFormat.QDQ
  quant_static_qoperator.onnx      quantize_static, QuantFormat.QOperator
  quant_fp16.onnx                  onnxconverter_common float16 conversion
  quant_float_matmulhead.onnx      same net, head written as x @ W.t() + b (MatMul+Add)
  quant_int4_matmulnbits.onnx      MatMulNBitsQuantizer (4 bit) on the MatMul-head model

Counts JSON: the FLOAT model's torch count for every variant (quantization
keeps one stored weight per parameter; scales / zero points are quantization
constants, not parameters) and a note on what the quantizer did.

Run:  python sample_models/exported/export_quantized.py
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import sys
import warnings

import numpy as np
import onnx
import onnxruntime
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import find_tensor_names, onnx_summary, out_path, verify, write_json  # noqa: E402

warnings.filterwarnings("ignore")
logging.getLogger().setLevel(logging.ERROR)

FLAG_SHAPE = {"C": 16, "H": 4, "W": 4, "units": 32}
INPUT_SHAPE = [2, 1, 16, 16]


def seed_all(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class QuantNet(nn.Module):
    def __init__(self, matmul_head: bool = False):
        super().__init__()
        self.matmul_head = matmul_head
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def _lin(self, lin: nn.Linear, x):
        if self.matmul_head:
            # hand-written linear: exported as MatMul(W^T folded copy) + Add
            return torch.matmul(x, lin.weight.t()) + lin.bias
        return lin(x)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = torch.relu(self._lin(self.fc1, x))
        return self._lin(self.fc2, x)


def build(matmul_head: bool = False) -> QuantNet:
    seed_all(0)
    return QuantNet(matmul_head).eval()


def export_float(model: nn.Module, fname: str) -> str:
    path = out_path(fname)
    seed_all(1)
    x = torch.randn(*INPUT_SHAPE)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    return path


class SeededReader:
    """Tiny deterministic CalibrationDataReader: 8 batches of seeded N(0,1) input."""

    def __init__(self, n: int = 8, seed: int = 123):
        rng = np.random.default_rng(seed)
        self._data = [{"input": rng.standard_normal(INPUT_SHAPE).astype(np.float32)} for _ in range(n)]
        self._it = iter(self._data)

    def get_next(self):
        return next(self._it, None)

    def rewind(self):
        self._it = iter(self._data)


def torch_counts(model: nn.Module) -> dict:
    p = sum(t.numel() for t in model.parameters())
    return dict(params=int(p), trainable=int(sum(t.numel() for t in model.parameters() if t.requires_grad)),
                bn_buffers=0)


def lookup_flagged(path: str, float_name: str, float_weight: np.ndarray) -> list:
    """Find the initializer(s) that store fc1's weight in a (possibly quantized)
    graph: exact value match (float / transposed copy), else the quantizer's
    derived name (<float_name>_quantized, _Q4, fp16 copy...) excluding scales and
    zero points."""
    m = onnx.load(path)
    hits = find_tensor_names(m, float_weight)
    if hits:
        return hits
    hits = []
    for init in m.graph.initializer:
        n = init.name
        low = n.lower()
        if (n == float_name or n.startswith(float_name + "_")) and "scale" not in low and "zero_point" not in low:
            hits.append(n)
    return hits


def ops_of(path: str) -> dict:
    return onnx_summary(onnx.load(path))["ops"]


def main() -> int:
    print(f"torch {torch.__version__} onnxruntime {onnxruntime.__version__} onnx {onnx.__version__}")
    from onnxruntime.quantization import (QuantFormat, QuantType, quantize_dynamic, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    results = {}
    failures = []
    model = build()
    counts = torch_counts(model)
    w_fc1 = model.fc1.weight.detach().numpy()
    fw = f"torch {torch.__version__}"
    base = dict(framework=fw, **counts)

    float_path = export_float(model, "quant_float.onnx")
    # numeric reference
    seed_all(1)
    x = torch.randn(*INPUT_SHAPE)
    with torch.no_grad():
        ref = model(x).numpy()

    # quantizers work best on a shape-inferred / pre-processed model
    pre_path = out_path("_quant_float_pre.onnx")
    quant_pre_process(float_path, pre_path, skip_optimization=False, skip_symbolic_shape=False)

    variants = [
        ("quant_float", "torchscript (float32 reference)", None,
         "Float32 reference for the quantized variants: Conv/Relu/MaxPool x2 -> Flatten -> Gemm(transB=1) x2."),
    ]

    def q_dynamic(dst):
        quantize_dynamic(pre_path, dst, weight_type=QuantType.QUInt8,
                         op_types_to_quantize=["Conv", "MatMul", "Gemm"])

    def q_dynamic_per_channel(dst):
        quantize_dynamic(pre_path, dst, weight_type=QuantType.QUInt8, per_channel=True,
                         op_types_to_quantize=["Conv", "MatMul", "Gemm"])

    def q_qdq(dst):
        quantize_static(pre_path, dst, SeededReader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=False)

    def q_qop(dst):
        quantize_static(pre_path, dst, SeededReader(), quant_format=QuantFormat.QOperator,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=False)

    def q_fp16(dst):
        from onnxconverter_common import float16
        import onnxconverter_common
        m = onnx.load(float_path)
        m16 = float16.convert_float_to_float16(m, keep_io_types=True)
        onnx.save(m16, dst)
        return f"onnxconverter_common {onnxconverter_common.__version__} float16.convert_float_to_float16(keep_io_types=True)"

    variants += [
        ("quant_dynamic", f"onnxruntime {onnxruntime.__version__} quantize_dynamic (QUInt8 weights)", q_dynamic, None),
        ("quant_dynamic_per_channel",
         f"onnxruntime {onnxruntime.__version__} quantize_dynamic (QUInt8 weights, per-channel)",
         q_dynamic_per_channel, None),
        ("quant_static_qdq", f"onnxruntime {onnxruntime.__version__} quantize_static QDQ (U8 act / S8 weight, per-tensor)",
         q_qdq, None),
        ("quant_static_qoperator", f"onnxruntime {onnxruntime.__version__} quantize_static QOperator (U8/S8, per-tensor)",
         q_qop, None),
        ("quant_fp16", "onnxconverter_common float16", q_fp16, None),
    ]

    for name, exporter, fn, note in variants:
        dst = out_path(name + ".onnx")
        try:
            if fn is not None:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    r = fn(dst)
                if isinstance(r, str):
                    exporter = r
            results[name] = dict(path=dst, exporter=exporter, note=note, base_name="fc1.weight")
        except Exception as exc:  # noqa: BLE001
            failures.append((name, f"{type(exc).__name__}: {exc}"))
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")

    # ---- MatMul-head model + int4 MatMulNBits ---------------------------------
    mm_model = build(matmul_head=True)
    assert torch_counts(mm_model) == counts
    mm_path = export_float(mm_model, "quant_float_matmulhead.onnx")
    mm_fc1_names = find_tensor_names(onnx.load(mm_path), w_fc1)
    results["quant_float_matmulhead"] = dict(
        path=mm_path, exporter="torchscript (float32, head as torch.matmul(x, W.t()) + b)", base_name=mm_fc1_names[0],
        note=None)
    dst = out_path("quant_int4_matmulnbits.onnx")
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import (DefaultWeightOnlyQuantConfig,
                                                                     MatMulNBitsQuantizer)
        cfg = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, bits=4)
        q = MatMulNBitsQuantizer(onnx.load(mm_path), algo_config=cfg)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            q.process()
        q.model.save_model_to_file(dst, use_external_data_format=False)
        results["quant_int4_matmulnbits"] = dict(
            path=dst, exporter=f"onnxruntime {onnxruntime.__version__} MatMulNBitsQuantizer(bits=4, block_size=32, "
                               "symmetric)", base_name=mm_fc1_names[0], note=None)
    except Exception as exc:  # noqa: BLE001
        failures.append(("quant_int4_matmulnbits", f"{type(exc).__name__}: {exc}"))
        print(f"FAIL quant_int4_matmulnbits: {type(exc).__name__}: {exc}")

    # QOperator on the MatMul-head model -> QLinearMatMul (+ QLinearAdd for the bias)
    dst = out_path("quant_static_qoperator_matmulhead.onnx")
    mm_pre = out_path("_quant_float_matmulhead_pre.onnx")
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            # skip_optimization=True: ORT's optimizer would fuse MatMul+Add back into Gemm (-> QGemm)
            quant_pre_process(mm_path, mm_pre, skip_optimization=True, skip_symbolic_shape=False)
            quantize_static(mm_pre, dst, SeededReader(), quant_format=QuantFormat.QOperator,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=False)
        results["quant_static_qoperator_matmulhead"] = dict(
            path=dst, exporter=f"onnxruntime {onnxruntime.__version__} quantize_static QOperator (U8/S8, per-tensor) "
                               "on the MatMul-head model", base_name=mm_fc1_names[0], note=None)
    except Exception as exc:  # noqa: BLE001
        failures.append(("quant_static_qoperator_matmulhead", f"{type(exc).__name__}: {exc}"))
        print(f"FAIL quant_static_qoperator_matmulhead: {type(exc).__name__}: {exc}")

    for p in (pre_path, mm_pre):
        if os.path.exists(p):
            os.remove(p)

    # ---- counts + verification ----------------------------------------------
    for name, r in results.items():
        path = r["path"]
        # Re-save to normalise (drops nothing; keeps files reproducible)
        m = onnx.load(path)
        onnx.save(m, path)
        flagged = lookup_flagged(path, r["base_name"], w_fc1)
        if not flagged:
            failures.append((name, "flagged weight not found"))
        sess = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x.numpy()})[0].astype(np.float32)
        diff = float(np.abs(got - ref).max())
        ops = ops_of(path)
        note = r["note"] or describe(name, ops)
        res = dict(
            base,
            exporter=r["exporter"],
            opset=[o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0],
            notes=note,
            flagged_weights=flagged,
            flagged_shapes={n: dict(FLAG_SHAPE) for n in flagged},
            flagged_source_params={"fc1.weight": flagged},
            example_input_shapes={"input": INPUT_SHAPE},
            numeric_check_vs_torch=("max abs diff < 1e-4" if diff < 1e-4 else
                                    "max abs diff < 0.05" if diff < 0.05 else
                                    "max abs diff < 0.5" if diff < 0.5 else f"LARGE diff {diff:.3g}"),
        )
        write_json(out_path(name + ".counts.json"), res)
        v = verify(path, shapes=res["example_input_shapes"])
        print(f"OK   {name}.onnx: checker={v['checker']} ort={v['onnxruntime']} diff={diff:.2g} "
              f"flagged={flagged} ops={ops}")
        if "FAIL" in v["checker"] + v["onnxruntime"]:
            failures.append((name, str(v)))
    print(f"{len(failures)} failure(s)")
    for f in failures:
        print("  ", f)
    return 0


def describe(name: str, ops: dict) -> str:
    fixed = ("Counts are the float torch model's parameters: the quantizer keeps exactly one stored weight per "
             "parameter (int8/uint8/int4/fp16); scales and zero points are quantization constants, not parameters.")
    text = {
        "quant_dynamic": "quantize_dynamic: weights stored as uint8 '<name>_quantized' with scalar '<name>_scale' / "
                         "'<name>_zero_point'; activations quantized at run time by DynamicQuantizeLinear; "
                         "Conv -> ConvInteger (+Cast, Mul by scales, Reshape+Add of the float bias); "
                         "Gemm(transB=1) -> MatMulInteger on a TRANSPOSED weight 'fc1.weight_Transposed_quantized' "
                         "[in,out] (+Cast, Mul, Add of float bias).",
        "quant_static_qdq": "quantize_static QDQ: float Conv/Gemm kept, every weight stored as int8 "
                            "'<name>_quantized' feeding DequantizeLinear; activations wrapped in QuantizeLinear/"
                            "DequantizeLinear pairs (Relu absorbed); biases stored as int32 '<bias>_quantized' "
                            "with their own [1] scale and int32 zero point. quant_pre_process left many unused "
                            "opset_import entries (ai.onnx.training, org.pytorch.aten, com.microsoft.nchwc ...).",
        "quant_static_qoperator": "quantize_static QOperator: QLinearConv (Relu fused away) for convs, head Gemm -> "
                                  "com.microsoft QGemm (NOT QLinearMatMul - see quant_static_qoperator_matmulhead); "
                                  "int8 weights, int32 biases '<name>_quantized' (no separate bias scale), uint8 "
                                  "activations; QuantizeLinear at input, DequantizeLinear at output.",
        "quant_static_qoperator_matmulhead": "quantize_static QOperator on the MatMul-head model: QLinearConv for "
                                  "convs, head MatMul -> QLinearMatMul with int8 weight 'onnx::MatMul_*_quantized' "
                                  "[in,out]; the bias Add -> com.microsoft QLinearAdd with the bias stored as UINT8 "
                                  "'fcX.bias_quantized' with its own scale/zero point (quantized like an activation). "
                                  "Pre-processed with skip_optimization=True because ORT's optimizer would fuse "
                                  "MatMul+Add back into Gemm (-> QGemm).",
        "quant_fp16": "float16 conversion: every float initializer stored as float16 (same names); Cast nodes "
                      "inserted at graph input/output (keep_io_types=True).",
        "quant_float_matmulhead": "Float32; head written in torch as x @ W.t() + b: the TorchScript exporter "
                                  "constant-folds W.t() into a TRANSPOSED initializer copy 'onnx::MatMul_*' "
                                  "[in,out] (torch names of fc1/fc2 weights lost); biases keep names fc1.bias/fc2.bias.",
        "quant_int4_matmulnbits": "MatMulNBitsQuantizer: each MatMul -> com.microsoft MatMulNBits(K, N, bits=4, "
                                  "block_size=32) with B uint8 [N, ceil(K/32), 16] ('<name>_Q4'); float scales "
                                  "written 2-D as [N, ceil(K/32)] ('<name>_scales') rather than the 1-D "
                                  "[N*ceil(K/32)] of the op spec; symmetric, so no zero_points input; Add of float "
                                  "bias unchanged; convs stay float. fc2 (K=32) is one block per row.",
    }.get(name, "")
    return (text + " " + fixed + " Ops: " + ", ".join(f"{k}x{v}" for k, v in ops.items())).strip()


if __name__ == "__main__":
    sys.exit(main())
