"""Small real exports (torch TorchScript and dynamo, onnxruntime optimizer) of patterns that
held-out models showed onnx-audit getting wrong; tests/test_heldout.py holds the expected
numbers, by hand from the architectures below. Run with the export venv (../README.md)."""
import os, warnings, logging
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
import torch, torch.nn as nn
D = os.path.dirname(os.path.abspath(__file__))
os.makedirs(D, exist_ok=True)
torch.manual_seed(0)


def ts(m, ex, name, names, dyn):
    m.eval()
    torch.onnx.export(m, ex, f"{D}/{name}.onnx", input_names=names, output_names=["out"],
                      dynamic_axes=dyn, opset_version=17, dynamo=False)


def dy(m, ex, name, ds):
    m.eval()
    p = torch.onnx.export(m, ex, dynamo=True, dynamic_shapes=ds, opset_version=18)
    p.save(f"{D}/{name}.onnx", external_data=False)


# R1: learned position table sliced to the sequence length -> Add (Whisper decoder / GPT-2 style)
class PosSlice(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 16)
        self.pos = nn.Parameter(torch.randn(32, 16))   # 512 params

    def forward(self, ids):
        return self.emb(ids) + self.pos[: ids.shape[1]]


ex = (torch.randint(0, 100, (2, 7)),)
ts(PosSlice(), ex, "r1_pos_slice.ts", ["ids"], {"ids": {0: "b", 1: "t"}})
dy(PosSlice(), ex, "r1_pos_slice.dynamo", ({0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC},))


# R2: HF-style rotary: inv_freq buffer x positions computed at runtime
class Rope(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, 16, 2).float() / 16)), persistent=False)
        self.lin = nn.Linear(16, 16, bias=False)   # 256 params

    def forward(self, x):
        t = torch.arange(x.shape[1], dtype=torch.float32)
        f = t[:, None] * self.inv_freq[None, :]
        emb = torch.cat((f, f), -1)
        return self.lin(x) * emb.cos()


ex = (torch.randn(2, 7, 16),)
ts(Rope(), ex, "r2_inv_freq.ts", ["x"], {"x": {0: "b", 1: "t"}})
dy(Rope(), ex, "r2_inv_freq.dynamo", ({0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC},))


# R3/R4 base: RMSNorm + Linear; and a patch-embed conv, to run through ORT's optimizer
class RMS(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.rand(16) + 0.5)
        self.lin = nn.Linear(16, 16, bias=False)

    def forward(self, x):
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.w
        return self.lin(x)


ts(RMS(), (torch.randn(2, 7, 16),), "r3_rms_base.ts", ["x"], {"x": {0: "b", 1: "t"}})


class Patch(nn.Module):
    def __init__(self):
        super().__init__()
        self.pe = nn.Conv2d(3, 16, 8, stride=8)
        self.lin = nn.Linear(16, 16)

    def forward(self, x):
        return self.lin(self.pe(x).flatten(2).transpose(1, 2))


ts(Patch(), (torch.randn(1, 3, 32, 32),), "r4_patch_base.ts", ["x"], {"x": {0: "b"}})


# R5: dim expressions in dynamo value_info (strided conv) are not substituted by --input-shape
class StridedConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(8, 16, 3, stride=2, padding=1)
        self.lin = nn.Linear(16, 16)

    def forward(self, x):
        return self.lin(self.c(x).transpose(1, 2))


dy(StridedConv(), (torch.randn(2, 8, 20),), "r5_dimexpr.dynamo",
   ({0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC},))


# R6: head_dim computed from the input's shape (D // h) -> Reshape target from Shape/Div: MatMul dims stay unknown
class HeadSplit(nn.Module):
    def __init__(self):
        super().__init__()
        self.h = 4

    def forward(self, x):
        B, T, Dm = x.shape
        q = x.view(B, T, self.h, Dm // self.h).transpose(1, 2)
        return q @ q.transpose(-1, -2)


ts(HeadSplit(), (torch.randn(2, 7, 64),), "r6_shape_div.ts", ["x"], {"x": {0: "b", 1: "t"}})


# R7: FFN weight [d, 4d] with 4d == vocab is reported as a possible transposed copy of the embedding
class FalseTie(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(64, 16)
        self.up = nn.Linear(16, 64)

    def forward(self, ids):
        return self.up(self.emb(ids))


dy(FalseTie(), (torch.randint(0, 64, (2, 7)),), "r7_false_tie.dynamo",
   ({0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC},))


# R8: dynamo folds BatchNorm into conv keeping the conv's names -> no folding note
class ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(8, 8, 3, padding=1, groups=8)
        self.bn = nn.BatchNorm1d(8)

    def forward(self, x):
        return self.bn(self.c(x))


m = ConvBN()
with torch.no_grad():
    m.bn.running_mean.uniform_(-1, 1); m.bn.running_var.uniform_(0.5, 2)
    m.bn.weight.uniform_(0.5, 1.5); m.bn.bias.uniform_(-1, 1)
dy(m, (torch.randn(2, 8, 20),), "r8_bnfold.dynamo", ({0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC},))
ts(m, (torch.randn(2, 8, 20),), "r8_bnfold.ts", ["x"], {"x": {0: "b", 2: "t"}})

# ORT optimizer passes for R3 / R4
from onnxruntime.transformers.optimizer import optimize_model
om = optimize_model(f"{D}/r3_rms_base.ts.onnx", model_type="gpt2", num_heads=0, hidden_size=0, use_gpu=False)
om.save_model_to_file(f"{D}/r3_simplified_ln.onnx")
om = optimize_model(f"{D}/r4_patch_base.ts.onnx", model_type="vit", num_heads=0, hidden_size=0, use_gpu=False, opt_level=99)
om.save_model_to_file(f"{D}/r4_nchwc_conv.onnx")
print("torch params: R1", sum(p.numel() for p in PosSlice().parameters()), "R2", sum(p.numel() for p in Rope().parameters()),
      "R3", sum(p.numel() for p in RMS().parameters()), "R4", sum(p.numel() for p in Patch().parameters()),
      "R7", sum(p.numel() for p in FalseTie().parameters()), "R8", sum(p.numel() for p in m.parameters()))


# R5b: strided conv, then a reshape through heads and back (as attention does)
class StridedConvReshape(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(8, 16, 3, stride=2, padding=1)
        self.lin = nn.Linear(16, 16)

    def forward(self, x):
        y = self.c(x).transpose(1, 2)
        B, T, C = y.shape
        y = y.view(B, T, 4, 4).transpose(1, 2)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.lin(y)


dy(StridedConvReshape(), (torch.randn(2, 8, 20),), "r5_dimexpr_reshape.dynamo",
   ({0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC},))
