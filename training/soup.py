"""Average the weights of character models fine-tuned from one parent.

    python soup.py --out ../crates/vision/models/ocr.onnx stage2.onnx stage3a.onnx [...]

Each run of train_ocr.py --init starts from the same exported model and
keeps its batch-norm statistics frozen, so the exported graphs are
identical and their folded weights lie in one coordinate system: their
element-wise mean is a model of the same size and speed that usually
reads better than any one of them ("model soup", Wortsman et al. 2022).
Models that do not share the parent (different batch-norm statistics)
must not be mixed; the checks below refuse a different graph, not a
different parent, so pass only siblings.
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
    def shape(m):
        return [(i.name, i.data_type, tuple(i.dims)) for i in m.graph.initializer]

    for m, path in zip(models[1:], a.models[1:]):
        if shape(m) != shape(base) or list(m.graph.node) != list(base.graph.node):
            raise SystemExit(f"{path}: not the same graph as {a.models[0]}")
    for k, init in enumerate(base.graph.initializer):
        arrays = [numpy_helper.to_array(m.graph.initializer[k]) for m in models]
        if arrays[0].dtype.kind != "f":
            # Shapes and indices must agree exactly; they are not averaged.
            if any(not np.array_equal(arrays[0], x) for x in arrays[1:]):
                raise SystemExit(f"{init.name}: differs between the models")
            continue
        mean = np.mean(np.stack(arrays), axis=0).astype(arrays[0].dtype)
        init.CopyFrom(numpy_helper.from_array(mean, init.name))
    onnx.checker.check_model(base)
    onnx.save(base, a.out)
    print(f"wrote {a.out}: mean of {len(models)} models")


if __name__ == "__main__":
    main()
