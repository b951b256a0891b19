"""A small ResNet-style CNN, float and quantized three ways, for ONX102 on quantized convs.

Float model (torch, TorchScript exporter, opset 17, eval: BatchNorm folded into the convs):
    [N,3,32,32] -> stem Conv(3->32, 3x3, stride 2)-BN-ReLU                     16x16
                -> block: Conv(32->32, 3x3)-BN-ReLU-Conv(32->32, 3x3)-BN (+ identity)-ReLU
                -> down:  Conv(32->48, 3x3, stride 2)-BN (+ Conv(32->48, 1x1, stride 2)-BN)-ReLU
                -> GlobalAveragePool -> Linear(48, 10)

ONX102 (3x3, C >= 32, group 1) flags the two block convs and the down conv; the stem (3 input
channels) and the 1x1 shortcut stay: 9*32*32 - (9*32 + 32*32) = 9,216 - 1,312 = 7,904 twice,
and 9*32*48 - (9*32 + 32*48) = 13,824 - 1,824 = 12,000: 27,808 in all. Quantizing stores the
same weights as int8/uint8, so every form gives the same numbers:

  qcnn_float.onnx       float32 reference (Conv)
  qcnn_qdq.onnx         quantize_static, QuantFormat.QDQ (DequantizeLinear -> Conv)
  qcnn_qoperator.onnx   quantize_static, QuantFormat.QOperator (QLinearConv)
  qcnn_dynamic.onnx     quantize_dynamic (ConvInteger)

Needs torch, onnx, onnxruntime (the `export` extra), never the test suite.
Run:  python sample_models/exported/export_quantized_cnn.py
"""

from __future__ import annotations

import os
import random
import sys
import warnings

import numpy as np
import onnxruntime
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
INPUT_SHAPE = (1, 3, 32, 32)
warnings.filterwarnings("ignore")


def seed_all(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(c_out)
    )


class QuantCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 32, 3, stride=2)
        self.block_a, self.block_b = conv_bn(32, 32, 3), conv_bn(32, 32, 3)
        self.down, self.shortcut = conv_bn(32, 48, 3, stride=2), conv_bn(32, 48, 1, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(48, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = torch.relu(x + self.block_b(torch.relu(self.block_a(x))))
        x = torch.relu(self.down(x) + self.shortcut(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class SeededReader:
    """Deterministic CalibrationDataReader: 8 batches of seeded N(0, 1) images."""

    def __init__(self, n: int = 8, seed: int = 123) -> None:
        rng = np.random.default_rng(seed)
        self.batches = [
            {"input": rng.standard_normal(INPUT_SHAPE).astype(np.float32)} for _ in range(n)
        ]
        self.index = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.index >= len(self.batches):
            return None
        self.index += 1
        return self.batches[self.index - 1]

    def rewind(self) -> None:
        self.index = 0


def main() -> int:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    seed_all(0)
    model = QuantCnn().eval()
    for module in model.modules():  # non-trivial BatchNorm statistics to fold
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = {name: os.path.join(HERE, f"qcnn_{name}.onnx") for name in
            ("float", "qdq", "qoperator", "dynamic")}  # fmt: skip
    torch.onnx.export(
        model, (torch.randn(*INPUT_SHAPE),), path["float"], dynamo=False, opset_version=17,
        input_names=["input"], output_names=["logits"], do_constant_folding=True,
    )  # fmt: skip
    pre = os.path.join(HERE, "_qcnn_pre.onnx")
    quant_pre_process(path["float"], pre, skip_optimization=False, skip_symbolic_shape=False)
    try:
        for name, fmt in (("qdq", QuantFormat.QDQ), ("qoperator", QuantFormat.QOperator)):
            quantize_static(
                pre, path[name], SeededReader(), quant_format=fmt,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=False,
            )  # fmt: skip
        quantize_dynamic(
            pre, path["dynamic"], weight_type=QuantType.QUInt8, op_types_to_quantize=["Conv"]
        )
    finally:
        os.remove(pre)
    x = SeededReader().batches[0]
    for name, file in path.items():
        session = onnxruntime.InferenceSession(file, providers=["CPUExecutionProvider"])
        out = session.run(None, x)[0]
        print(f"{os.path.basename(file)}: {os.path.getsize(file):,} bytes, output {out.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
