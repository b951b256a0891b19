"""Verify every exported sample and write manifest.json.

For each `*.onnx` next to this script: onnx.checker.check_model(full_check=True)
and one onnxruntime (CPU) run on seeded random input shaped as in the counts
JSON.  The manifest pairs each model with its counts JSON and copies the
framework-side counts (it never derives counts from the ONNX file).

Run:  python sample_models/exported/build_manifest.py   (after the export_*.py scripts)
      python sample_models/exported/build_manifest.py --add NAME.onnx ...   (just those)
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


def entry_for(path: str) -> tuple[dict | None, str | None]:
    """The manifest entry of one model (verified now), and what is wrong with it, if anything."""
    fname = os.path.basename(path)
    stem = fname[:-5]
    cpath = os.path.join(HERE, stem + ".counts.json")
    if not os.path.exists(cpath):
        return None, "missing counts json"
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
    print(f"{fname:48s} {entry['bytes']:>8d} B params={entry['params']!s:>6} "
          f"flagged={len(entry['flagged_weights'])} checker={v['checker']} ort={v['onnxruntime']}")
    if v["checker"] != "ok" or v["onnxruntime"] != "ok":
        return entry, f"checker={v['checker']} ort={v['onnxruntime']}"
    return entry, None


def main() -> int:
    """Every model, or with `--add NAME.onnx ...` only those, added to (or replaced in) the
    existing manifest: models other scripts test on their own stay out of it."""
    manifest_path = os.path.join(HERE, "manifest.json")
    add = sys.argv[2:] if sys.argv[1:2] == ["--add"] else None
    if add is None:
        paths = sorted(glob.glob(os.path.join(HERE, "*.onnx")))
        kept = []
    else:
        paths = [os.path.join(HERE, name) for name in add]
        with open(manifest_path, encoding="utf-8") as fh:
            kept = [e for e in json.load(fh)["models"] if e["onnx"] not in add]
    entries, bad = list(kept), []
    for path in paths:
        if os.path.basename(path).startswith("_"):
            continue
        entry, problem = entry_for(path)
        if entry is not None:
            entries.append(entry)
        if problem is not None:
            bad.append((os.path.basename(path), problem))
    entries.sort(key=lambda e: e["onnx"])
    manifest = dict(
        description="Real exported sample ONNX models with framework-side parameter counts (see README.md).",
        verified_with=f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)",
        models=entries,
    )
    write_json(manifest_path, manifest)
    print(f"{len(entries)} models, {len(bad)} problem(s)")
    for b in bad:
        print("  ", b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
