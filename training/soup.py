"""Average the weights of character models fine-tuned from one parent.

    python soup.py --out ../crates/vision/models/ocr.onnx stage2.onnx stage3a.onnx [...]

Each run of train_ocr.py --init starts from the same exported model and
keeps its batch-norm statistics frozen, so the exported graphs are
identical and their folded weights lie in one coordinate system: their
element-wise mean is a model of the same size and speed that usually
reads better than any one of them ("model soup", Wortsman et al. 2022).
Models that do not share the parent (different batch-norm statistics)
must not be mixed; the graph check below refuses different shapes, not
different parents, so pass only siblings.
"""
import argparse

import numpy as np
import onnx
from onnx import numpy_helper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    models = [onnx.load(p) for p in a.models]
    base = models[0]
    for m, path in zip(models[1:], a.models[1:]):
        same = [(i.name, tuple(i.dims)) for i in m.graph.initializer] == \
               [(i.name, tuple(i.dims)) for i in base.graph.initializer]
        if not same or [n.op_type for n in m.graph.node] != [n.op_type for n in base.graph.node]:
            raise SystemExit(f"{path}: not the same graph as {a.models[0]}")
    for k, init in enumerate(base.graph.initializer):
        arrays = [numpy_helper.to_array(m.graph.initializer[k]) for m in models]
        if arrays[0].dtype.kind != "f":
            continue  # shapes and indices stay as they are
        mean = np.mean(np.stack(arrays), axis=0).astype(arrays[0].dtype)
        init.CopyFrom(numpy_helper.from_array(mean, init.name))
    onnx.checker.check_model(base)
    onnx.save(base, a.out)
    print(f"wrote {a.out}: mean of {len(models)} models")


if __name__ == "__main__":
    main()
