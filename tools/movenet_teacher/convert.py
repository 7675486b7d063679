"""Run ``python -m tf2onnx.convert`` with NumPy 2.

tf2onnx 1.17.0 (the latest release) still calls ``numpy.product``, which NumPy 2.0 removed
(``AttributeError: module 'numpy' has no attribute 'product'`` while reading TFJS weights).
NumPy 2 is needed by TensorFlow 2.21, so alias it back before tf2onnx is imported; all other
arguments go to tf2onnx unchanged.

    python convert.py --tfjs OUT_DIR/model.json --opset 17 --output model.onnx [...]
"""

import runpy
import sys

import numpy as np

if not hasattr(np, "product"):
    np.product = np.prod

if __name__ == "__main__":
    sys.argv[0] = "tf2onnx.convert"
    runpy.run_module("tf2onnx.convert", run_name="__main__", alter_sys=True)
