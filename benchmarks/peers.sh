#!/usr/bin/env bash
# The peer tools run.py times, in a venv of their own: they never enter onnx-audit's
# dependencies. Usage: bash benchmarks/peers.sh [VENV]   (default /work/venv-bench, which is
# run.py's --bench-python default; PYTHON=python3.11 picks the interpreter).
#
# Pinned to what RESULTS.md was measured with. onnx, numpy and protobuf match the project's venv
# so "onnx.load" is the same code in both. onnxruntime is there because onnx_opcounter imports
# it at import time without declaring it. onnx-opcounter 0.1.0 needs Python >= 3.12; on the
# project's 3.11 pip takes 0.0.4, whose calculate_params is onnx.load + numpy_helper.to_array.
set -euo pipefail
VENV=${1:-/work/venv-bench}
PYTHON=${PYTHON:-python3.11}
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet \
    onnx==1.23.2 numpy==2.4.6 protobuf==7.36.2 \
    onnx-tool==1.0.1 onnx-opcounter==0.0.4 polygraphy==0.53.6 onnx-ir==1.1.0 \
    onnxruntime==1.32.0
"$VENV/bin/python" -c "import onnx_tool, onnx_opcounter, polygraphy, onnx_ir; print('peers ready')"
"$VENV/bin/python" -m pip freeze > "$VENV/peers-freeze.txt"
echo "versions: $VENV/peers-freeze.txt"
