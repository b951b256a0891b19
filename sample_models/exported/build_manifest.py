"""Verify every exported sample and write manifest.json.

For each `*.onnx` next to this script: onnx.checker.check_model(full_check=True)
and one onnxruntime (CPU) run on seeded random input shaped as in the counts
JSON.  The manifest pairs each model with its counts JSON and copies the
framework-side counts (it never derives counts from the ONNX file).

Run:  python sample_models/exported/build_manifest.py   (after the export_*.py scripts)
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import sys

import onnx
import onnxruntime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import HERE, onnx_summary, verify, write_json  # noqa: E402

SCRIPT_OF = [
    ("keras_", "export_keras.py"),
    ("sklearn_", "export_sklearn.py"),
    ("quant_", "export_quantized.py"),
    ("subgraph_", "export_subgraphs.py"),
    ("function_", "export_subgraphs.py"),
    ("paddle_", "export_paddle.py"),
    ("vgg_style.", "export_rules.py"),
    ("mobilenet_style.", "export_rules.py"),
    ("resnet_style.", "export_rules.py"),
    ("gpt2_tied.", "export_rules.py"),
    ("gpt2_untied.", "export_rules.py"),
]


def script_for(name: str) -> str:
    for prefix, script in SCRIPT_OF:
        if name.startswith(prefix):
            return script
    return "export_torch.py"


def main() -> int:
    entries = []
    bad = []
    for path in sorted(glob.glob(os.path.join(HERE, "*.onnx"))):
        fname = os.path.basename(path)
        if fname.startswith("_"):
            continue
        stem = fname[:-5]
        cpath = os.path.join(HERE, stem + ".counts.json")
        if not os.path.exists(cpath):
            bad.append((fname, "missing counts json"))
            continue
        with open(cpath, encoding="utf-8") as fh:
            counts = json.load(fh)
        v = verify(path, shapes=counts.get("example_input_shapes"), int_high=4)
        m = onnx.load(path)
        summ = onnx_summary(m)
        with open(path, "rb") as fh:
            sha = hashlib.sha256(fh.read()).hexdigest()
        entry = dict(
            onnx=fname,
            counts=os.path.basename(cpath),
            script=script_for(fname),
            bytes=os.path.getsize(path),
            sha256=sha,
            framework=counts.get("framework"),
            exporter=counts.get("exporter"),
            opsets=summ["opsets"],
            params=counts.get("params"),
            trainable=counts.get("trainable"),
            bn_buffers=counts.get("bn_buffers"),
            flagged=bool(counts.get("flagged_weights")),
            flagged_weights=counts.get("flagged_weights", []),
            checker=v["checker"],
            onnxruntime=v["onnxruntime"],
        )
        for k in ("non_trainable", "params_distinct_values", "params_if_inlined"):
            if k in counts:
                entry[k] = counts[k]
        entries.append(entry)
        if v["checker"] != "ok" or v["onnxruntime"] != "ok":
            bad.append((fname, f"checker={v['checker']} ort={v['onnxruntime']}"))
        print(f"{fname:48s} {entry['bytes']:>8d} B params={entry['params']!s:>6} "
              f"flagged={len(entry['flagged_weights'])} checker={v['checker']} ort={v['onnxruntime']}")
    manifest = dict(
        description="Real exported sample ONNX models with framework-side parameter counts (see README.md).",
        verified_with=f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)",
        models=entries,
    )
    write_json(os.path.join(HERE, "manifest.json"), manifest)
    print(f"{len(entries)} models, {len(bad)} problem(s)")
    for b in bad:
        print("  ", b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
