"""Export a small scikit-learn MLPClassifier (fit on the 8x8 digits set that
ships with scikit-learn) to ONNX with skl2onnx.

Counts come from scikit-learn: sum of coefs_ and intercepts_ sizes.  The
digits images are flattened to 64 features BEFORE reaching the model, whose
ONNX input is [N, 64]: there is no spatial tensor in the graph, so nothing is
flagged.

Run:  python sample_models/exported/export_sklearn.py
"""
from __future__ import annotations

import os
import random
import sys
import warnings

import numpy as np
import onnx
import sklearn
import skl2onnx
from skl2onnx import to_onnx
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import out_path, verify, write_json  # noqa: E402

TARGET_OPSET = 17
warnings.filterwarnings("ignore", category=UserWarning)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
warnings.filterwarnings("ignore", category=ConvergenceWarning)


def main() -> int:
    random.seed(0)
    np.random.seed(0)
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=300, random_state=0)
    clf.fit(X, y)

    params = int(sum(c.size for c in clf.coefs_) + sum(b.size for b in clf.intercepts_))
    per_layer = [[list(c.shape), list(b.shape)] for c, b in zip(clf.coefs_, clf.intercepts_)]

    name = "sklearn_mlp_digits"
    path = out_path(name + ".onnx")
    mp = to_onnx(clf, X[:1], target_opset={"": TARGET_OPSET, "ai.onnx.ml": 3},
                 options={id(clf): {"zipmap": False}})
    onnx.save(mp, path)

    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    lab, prob = sess.run(None, {sess.get_inputs()[0].name: X[:20]})
    assert np.array_equal(lab, clf.predict(X[:20])), "label mismatch"
    assert np.abs(prob - clf.predict_proba(X[:20])).max() < 1e-4, "proba mismatch"

    in_name = mp.graph.input[0].name
    res = dict(
        framework=f"scikit-learn {sklearn.__version__}",
        exporter=f"skl2onnx {skl2onnx.__version__}",
        opset=TARGET_OPSET,
        params=params,
        trainable=params,
        bn_buffers=0,
        layer_shapes=per_layer,
        train_accuracy=round(float(clf.score(X, y)), 4),
        notes=("MLPClassifier(hidden_layer_sizes=(32,16), relu) on load_digits (8x8 images flattened to 64 "
               "features by the dataset, input [N,64]). params = sum of coefs_ + intercepts_ sizes = "
               "64*32+32 + 32*16+16 + 16*10+10. skl2onnx writes each layer as MatMul (coefs_ [in,out]) + Add "
               "(intercept stored as a [1,out] initializer), Relu, then Softmax; the label path is ArgMax + "
               "ai.onnx.ml ArrayFeatureExtractor over an INT32 'classes' [10] initializer (class labels, NOT "
               "parameters) + Cast/Reshape; zipmap disabled so outputs are plain tensors. Batch dim of input X "
               "is an unnamed unknown dim. "
               "NOT flagged: the ONNX graph never sees a spatial tensor."),
        flagged_weights=[],
        flagged_shapes={},
        example_input_shapes={in_name: [2, 64]},
        numeric_check_vs_framework="ok (labels equal, probabilities within 1e-4 on 20 samples)",
    )
    write_json(out_path(name + ".counts.json"), res)
    v = verify(path, shapes=res["example_input_shapes"])
    print(f"OK   {name}.onnx: params={params} checker={v['checker']} ort={v['onnxruntime']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
