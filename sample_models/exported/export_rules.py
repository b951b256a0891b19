"""Real torch exports for the parameter-saving rules (ONX101-ONX104): VGG-, MobileNet- and
ResNet-style CNNs and GPT-2-style language models with tied and untied output heads.

Counts come from torch (`model.parameters()`), as for every exported sample; the rules' expected
numbers are hand arithmetic in tests/test_rule_exports.py. Run with the export venv (README.md):

    /work/venv-export/bin/python sample_models/exported/export_rules.py
"""

from __future__ import annotations

import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_torch import do_export  # noqa: E402


class VGGStyle(nn.Module):
    # 3x24x24 -> conv3 3->32 -> conv3 32->64 -> pool -> 64x12x12 -> conv3 64->64 -> pool
    # -> 64x6x6 -> flatten 2,304 -> fc1 64 -> fc2 10. fc1 holds 72% of the parameters.
    flagged = [("fc1", {"C": 64, "H": 6, "W": 6, "units": 64})]

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64 * 6 * 6, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv2(torch.relu(self.conv1(x)))))
        x = self.pool(torch.relu(self.conv3(x)))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class MobileNetStyle(nn.Module):
    # Stem conv3 3->32 stride 2, then depthwise-separable blocks (dw3x3 + pw1x1), GAP, fc.
    flagged = []

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, stride=2, padding=1)
        self.dw1 = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.pw1 = nn.Conv2d(32, 64, 1)
        self.dw2 = nn.Conv2d(64, 64, 3, stride=2, padding=1, groups=64)
        self.pw2 = nn.Conv2d(64, 128, 1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.pw1(torch.relu(self.dw1(x))))
        x = torch.relu(self.pw2(torch.relu(self.dw2(x))))
        return self.fc(x.mean(dim=(2, 3)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.short is None else self.short(x)))


class ResNetStyle(nn.Module):
    # Stem conv3 3->32, a 32->32 block, a 32->64 stride-2 block with a 1x1 shortcut, GAP, fc.
    flagged = []

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(32)
        self.layer1 = BasicBlock(32, 32, 1)
        self.layer2 = BasicBlock(32, 64, 2)
        self.fc = nn.Linear(64, 10)
        for module in self.modules():  # trained-looking statistics, so folding changes values
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)

    def forward(self, x):
        x = self.layer2(self.layer1(torch.relu(self.bn(self.stem(x)))))
        return self.fc(x.mean(dim=(2, 3)))


class GPT2Style(nn.Module):
    # Token + position embeddings, one pre-norm block, final LayerNorm, lm_head to the vocab.
    flagged = []
    vocab, dim, context = 1000, 32, 64

    def __init__(self, tied: bool):
        super().__init__()
        self.wte = nn.Embedding(self.vocab, self.dim)
        self.wpe = nn.Embedding(self.context, self.dim)
        self.ln1 = nn.LayerNorm(self.dim)
        self.attn = nn.Linear(self.dim, 3 * self.dim)
        self.proj = nn.Linear(self.dim, self.dim)
        self.ln2 = nn.LayerNorm(self.dim)
        self.fc = nn.Linear(self.dim, 4 * self.dim)
        self.out = nn.Linear(4 * self.dim, self.dim)
        self.ln_f = nn.LayerNorm(self.dim)
        self.lm_head = nn.Linear(self.dim, self.vocab, bias=False)
        if tied:
            self.lm_head.weight = self.wte.weight

    def forward(self, tokens):
        steps = tokens.shape[1]
        positions = torch.arange(steps, device=tokens.device).unsqueeze(0)
        h = self.wte(tokens) + self.wpe(positions)
        q, k, v = self.attn(self.ln1(h)).split(self.dim, dim=-1)
        scores = (q @ k.transpose(-1, -2)) / self.dim**0.5
        mask = torch.ones(steps, steps, dtype=torch.bool, device=tokens.device).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
        h = h + self.proj(scores.softmax(-1) @ v)
        h = h + self.out(torch.nn.functional.gelu(self.fc(self.ln2(h))))
        return self.lm_head(self.ln_f(h))


def _tokens():
    return torch.randint(0, GPT2Style.vocab, (2, 16))


def _image(size: int):
    return lambda: torch.randn(2, 3, size, size)


SAMPLES = [
    dict(name="vgg_style", cls=VGGStyle, example=_image(24), dyn={0: "N"},
         notes="VGG-style: three 3x3 convs (the 3->32 stem too narrow for ONX102), a 2,304 -> 64 "
               "classifier on a flattened 64x6x6 map holding 72% of the parameters."),
    dict(name="mobilenet_style", cls=MobileNetStyle, example=_image(32), dyn={0: "N"},
         notes="MobileNet-style: stem, two depthwise-separable blocks, mean pooling, fc."),
    dict(name="resnet_style", cls=ResNetStyle, example=_image(16), dyn={0: "N"},
         notes="ResNet-style: BatchNorm after bias-free convs (folded by the exporters in eval mode), "
               "two basic blocks, the second with a strided 1x1 shortcut."),
    dict(name="gpt2_tied", cls=lambda: GPT2Style(tied=True), example=_tokens, dyn={0: "N", 1: "T"},
         notes="GPT-2-style, lm_head tied to the 1,000 x 32 token embedding."),
    dict(name="gpt2_untied", cls=lambda: GPT2Style(tied=False), example=_tokens, dyn={0: "N", 1: "T"},
         notes="GPT-2-style, lm_head a separate 1,000 x 32 matrix."),
]


def main() -> int:
    print(f"torch {torch.__version__}")
    failed = 0
    for sample in SAMPLES:
        for exporter in ("torchscript", "dynamo"):
            try:
                result = do_export(sample, exporter)
                print(f"OK   {sample['name']}.{exporter}: {result['verify']}")
            except Exception as exc:  # noqa: BLE001
                failed += 1
                print(f"FAIL {sample['name']}.{exporter}: {type(exc).__name__}: {exc}"[:400])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
