"""Small YOLO-style and ResNet-style nets exported with dynamic batch, height and width.

They exist to exercise the terminal table (issue 15): every output shape and MAC count below the
stem is a formula in `height` and `width` (`floor(height/2 - 1/2) + 1`, nested halvings), and the
node names carry the module path (`/model.4/cv2/conv/Conv`) that `--depth` folds.

Run in the export venv (see README.md), not a test dependency:

    .venv-export/bin/python sample_models/exported/export_dynamic_hw.py [OUT_DIR]

Without OUT_DIR it writes yolo_tiny_dyn.torchscript.onnx and yolo_tiny_dyn.dynamo.onnx here with
their .counts.json (parameters from torch's model.parameters()); the ResNet-style net is written
only to OUT_DIR (a scratch folder) as it adds nothing the YOLO-style one does not.
"""

from __future__ import annotations

import json
import os
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))


class ConvBNSiLU(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int = 3, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.cv1 = ConvBNSiLU(c, c, 3)
        self.cv2 = ConvBNSiLU(c, c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.cv2(self.cv1(x))


class C2f(nn.Module):
    def __init__(self, c_in: int, c_out: int, n: int = 1) -> None:
        super().__init__()
        self.c = c_out // 2
        self.cv1 = ConvBNSiLU(c_in, 2 * self.c, 1)
        self.cv2 = ConvBNSiLU((2 + n) * self.c, c_out, 1)
        self.m = nn.ModuleList(Bottleneck(self.c) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for block in self.m:
            y.append(block(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        c = c_in // 2
        self.cv1 = ConvBNSiLU(c_in, c, 1)
        self.cv2 = ConvBNSiLU(c * 4, c_out, 1)
        self.m = nn.MaxPool2d(5, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Detect(nn.Module):
    def __init__(self, nc: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        reg = 16
        self.cv2 = nn.ModuleList(
            nn.Sequential(ConvBNSiLU(c, reg, 3), ConvBNSiLU(reg, reg, 3), nn.Conv2d(reg, 4 * 4, 1))
            for c in channels
        )
        self.cv3 = nn.ModuleList(
            nn.Sequential(ConvBNSiLU(c, nc, 3), ConvBNSiLU(nc, nc, 3), nn.Conv2d(nc, nc, 1))
            for c in channels
        )

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        outs = [
            torch.cat((box(f), cls(f)), 1).flatten(2)
            for f, box, cls in zip(feats, self.cv2, self.cv3, strict=True)
        ]
        return torch.cat(outs, 2)


class YoloTiny(nn.Module):
    """YOLOv8's layout at a fraction of its width: backbone, SPPF, a small neck, Detect."""

    def __init__(self, nc: int = 2) -> None:
        super().__init__()
        w = (2, 4, 8, 16)
        self.model = nn.ModuleList(
            [
                ConvBNSiLU(3, w[0], 3, 2),  # 0  /2
                ConvBNSiLU(w[0], w[1], 3, 2),  # 1  /4
                C2f(w[1], w[1], 1),  # 2
                ConvBNSiLU(w[1], w[2], 3, 2),  # 3  /8
                C2f(w[2], w[2], 2),  # 4
                ConvBNSiLU(w[2], w[3], 3, 2),  # 5  /16
                C2f(w[3], w[3], 1),  # 6
                SPPF(w[3], w[3]),  # 7
                nn.Upsample(scale_factor=2.0, mode="nearest"),  # 8
                C2f(w[3] + w[2], w[2], 1),  # 9
                ConvBNSiLU(w[2], w[2], 3, 2),  # 10
                C2f(w[2] + w[3], w[3], 1),  # 11
                Detect(nc, (w[2], w[3])),  # 12
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = m[1](m[0](x))
        x = m[2](x)
        p3 = m[4](m[3](x))
        p4 = m[7](m[6](m[5](p3)))
        n3 = m[9](torch.cat((m[8](p4), p3), 1))
        n4 = m[11](torch.cat((m[10](n3), p4), 1))
        return m[12]([n3, n4])


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.downsample(x))


class ResNetTiny(nn.Module):
    """ResNet-18's layout (stem, maxpool, 4 stages of 2 blocks, GAP, fc) with narrow widths."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = (8, 16, 32, 64)
        layers = []
        c_in = 8
        for i, c in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(c_in, c, stride), BasicBlock(c, c, 1)))
            c_in = c
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def export(model: nn.Module, path: str, dynamo: bool) -> None:
    model.eval()
    x = torch.randn(1, 3, 64, 96)
    if dynamo:
        axes = {"images": {0: "batch", 2: "height", 3: "width"}}
        torch.onnx.export(
            model,
            (x,),
            path,
            dynamo=True,
            input_names=["images"],
            dynamic_axes=axes,
            external_data=False,
        )
    else:
        axes = {"images": {0: "batch", 2: "height", 3: "width"}}
        torch.onnx.export(
            model,
            (x,),
            path,
            dynamo=False,
            opset_version=17,
            input_names=["images"],
            output_names=["output"],
            dynamic_axes=axes,
        )
    if dynamo:  # node metadata (stack traces, name scopes) is 3/4 of the file: dropped
        import onnx  # noqa: PLC0415

        proto = onnx.load(path)
        for node in proto.graph.node:
            del node.metadata_props[:]
        onnx.save(proto, path)
    params = sum(p.numel() for p in model.parameters())
    counts = {"params": params, "source": "torch model.parameters()"}
    with open(path.replace(".onnx", ".counts.json"), "w", encoding="utf-8") as fh:
        json.dump(counts, fh, indent=2)
        fh.write("\n")
    print(path, os.path.getsize(path), "bytes,", params, "params")


def main() -> None:
    torch.manual_seed(0)
    out = sys.argv[1] if len(sys.argv) > 1 else HERE
    os.makedirs(out, exist_ok=True)
    for dynamo in (False, True):
        kind = "dynamo" if dynamo else "torchscript"
        export(YoloTiny(), os.path.join(out, f"yolo_tiny_dyn.{kind}.onnx"), dynamo)
        if out != HERE:
            export(ResNetTiny(), os.path.join(out, f"resnet_tiny_dyn.{kind}.onnx"), dynamo)


if __name__ == "__main__":
    main()
