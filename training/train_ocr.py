"""Train the plate-character model (CTC over columns) and export ONNX.

    python train_ocr.py --out ../crates/vision/models/ocr.onnx \
        [--real ../../shared/data/openalpr-benchmarks/seg_and_ocr] \
        [--samples 60000] [--minutes 25] [--init earlier.onnx --lr 5e-4 --seed 2]

Input: grey 48x96 crop of one plate scaled to [0, 1]. Output: logits
[batch, 24, 37] (24 columns; class 0 is the CTC blank, then 0-9, A-Z).
With --real, the crops whose split() is "train" are mixed in with heavy
augmentation; those marked "held" are never seen and give the reported score.
With --init, training starts from an exported model's weights (batch norm
was folded into the convolutions by the export, so it is restored as a
fixed identity whose shift is the folded bias, and its statistics stay
frozen); a new --seed then brings fresh synthetic plates and fresh
augmentations of the real crops.
"""
import argparse
import csv
import os
import random
import time
import zlib
from multiprocessing import Pool

import numpy as np
import onnx
import torch
import torch.nn as nn
from PIL import Image

import plates
import schedule

H, W, T = 48, 96, 24
CLASSES = 1 + len(plates.ALPHABET)


def split(name: str) -> str:
    """Stable half/half split of the real crops by file name."""
    return "train" if zlib.crc32(name.encode()) % 2 == 0 else "held"


def to_input(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L").resize((W, H), Image.BILINEAR), dtype=np.uint8)


def _synth(seed):
    rng = random.Random(seed)
    p, text, _ = plates.render_plate(rng)
    return to_input(plates.warp_crop(p, rng)), text


def _real_aug(args):
    path, text, seed = args
    rng = random.Random(seed)
    img = Image.open(path).convert("RGB")
    if seed % 8 != 0:
        img = plates.warp_crop(img, rng)
    return to_input(img), text


def encode(text):
    return [plates.ALPHABET.index(c) + 1 for c in text]


def greedy(logits):
    out = []
    for row in logits.argmax(-1).tolist():
        s, prev = [], 0
        for k in row:
            if k != prev and k != 0:
                s.append(plates.ALPHABET[k - 1])
            prev = k
        out.append("".join(s))
    return out


class Ocr(nn.Module):
    def __init__(self):
        super().__init__()

        def block(i, o):
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        self.f = nn.Sequential(
            *block(1, 32), nn.MaxPool2d(2),
            *block(32, 48), nn.MaxPool2d(2),
            *block(48, 64), *block(64, 64), nn.MaxPool2d((2, 1)),
            *block(64, 96), *block(96, 96), nn.MaxPool2d((2, 1)),
            nn.Conv2d(96, 192, (3, 1), bias=False), nn.BatchNorm2d(192), nn.ReLU(inplace=True),
            nn.Conv2d(192, 192, (1, 3), padding=(0, 1)), nn.ReLU(inplace=True),
            nn.Dropout(0.1),
            nn.Conv2d(192, CLASSES, 1),
        )

    # Set by load_onnx_weights: batch norm then keeps its restored
    # statistics in training mode too.
    frozen_norms = False

    def train(self, mode=True):
        super().train(mode)
        if mode and self.frozen_norms:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def forward(self, x):
        y = self.f(x)  # [B, C, 1, T]
        return y.squeeze(2).permute(0, 2, 1)  # [B, T, C]


def load_onnx_weights(model, path):
    """Copies an exported model's convolutions back into `model`, in graph
    order; each one followed by batch norm gets that norm set to the
    identity plus the folded bias."""
    graph = onnx.load(path).graph
    init = {i.name: torch.from_numpy(onnx.numpy_helper.to_array(i).copy()) for i in graph.initializer}
    exported = [(init[n.input[1]], init[n.input[2]]) for n in graph.node if n.op_type == "Conv"]
    layers = list(model.f)
    convs = [(k, m) for k, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    if len(convs) != len(exported):
        raise SystemExit(f"{path}: {len(exported)} convolutions, the model has {len(convs)}")
    with torch.no_grad():
        for (k, conv), (w, b) in zip(convs, exported):
            if conv.weight.shape != w.shape:
                raise SystemExit(f"{path}: convolution {k} is {list(w.shape)}, expected {list(conv.weight.shape)}")
            conv.weight.copy_(w)
            bn = layers[k + 1] if k + 1 < len(layers) else None
            if isinstance(bn, nn.BatchNorm2d):
                bn.weight.fill_(1.0)
                bn.bias.copy_(b)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
            else:
                conv.bias.copy_(b)
    model.frozen_norms = True
    model.train()


def load_real(root):
    rows = list(csv.reader(open(os.path.join(root, "groundtruth.csv"))))
    out = {"train": [], "held": []}
    for name, state, plate in rows:
        out[split(name)].append((os.path.join(root, "usimages", name), plate.strip().upper()))
    return out


def batches(x, y, bs, rng):
    idx = list(range(len(x)))
    rng.shuffle(idx)
    for i in range(0, len(idx) - bs + 1, bs):
        yield [x[j] for j in idx[i:i + bs]], [y[j] for j in idx[i:i + bs]]


def tensor(imgs):
    return torch.from_numpy(np.stack(imgs)).float().div(255).unsqueeze(1)


def score(model, imgs, texts):
    model.eval()
    with torch.no_grad():
        pred = []
        for i in range(0, len(imgs), 256):
            pred += greedy(model(tensor(imgs[i:i + 256])))
    model.train()
    return sum(p == t for p, t in zip(pred, texts)) / max(1, len(texts))


def scores(model, val, real_held):
    """The held-out figures, as one line."""
    msg = f"synthetic val exact {score(model, [i for i, _ in val], [t for _, t in val]):.3f}"
    if real_held:
        msg += f", held-out real exact {score(model, [i for i, _ in real_held], [t for _, t in real_held]):.3f}"
    return msg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--real")
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--real-copies", type=int, default=16, help="augmented copies of each real crop")
    ap.add_argument("--init", help="start from this exported model (fine-tuning)")
    ap.add_argument("--lr", type=float, default=2e-3)
    a = schedule.parse_args(ap)
    rng = random.Random(a.seed)
    t0 = time.time()
    with Pool(a.threads) as pool:
        synth = pool.map(_synth, range(a.seed * 10_000_000, a.seed * 10_000_000 + a.samples), chunksize=256)
        val = pool.map(_synth, range(999_000_000, 999_002_000), chunksize=256)
        real_train, real_held = [], []
        if a.real:
            r = load_real(a.real)
            # Seed 1 keeps the augmentations the first models were trained on.
            first = (a.seed - 1) * a.real_copies
            jobs = [(p, t, s) for s in range(first, first + a.real_copies) for (p, t) in r["train"]]
            real_train = pool.map(_real_aug, jobs, chunksize=32)
            real_held = [(to_input(Image.open(p).convert("RGB")), t) for p, t in r["held"]]
    print(f"data: {len(synth)} synthetic, {len(real_train)} real-augmented, "
          f"{len(real_held)} held-out real, {time.time() - t0:.0f}s", flush=True)
    xs = [i for i, _ in synth] + [i for i, _ in real_train]
    ys = [t for _, t in synth] + [t for _, t in real_train]

    model = Ocr()
    if a.init:
        load_onnx_weights(model, a.init)
        print(f"from {a.init}: {scores(model, val, real_held)}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    t1 = time.time()
    deadline = t1 + a.minutes * 60
    step, epoch, bs = 0, 0, 64
    while time.time() < deadline:
        epoch += 1
        for bx, by in batches(xs, ys, bs, rng):
            x = tensor(bx)
            # Cheap per-batch augmentation: invert (light-on-dark plates), shift.
            if rng.random() < 0.5:
                flip = torch.rand(x.shape[0]) < 0.15
                x[flip] = 1 - x[flip]
            targets = torch.tensor([c for t in by for c in encode(t)], dtype=torch.long)
            lens = torch.tensor([len(t) for t in by], dtype=torch.long)
            logp = model(x).log_softmax(-1).permute(1, 0, 2)
            loss = ctc(logp, targets, torch.full((len(by),), T, dtype=torch.long), lens)
            schedule.step(opt, loss, a.lr, t1, deadline)
            step += 1
            if step % 200 == 0:
                print(f"step {step} epoch {epoch} loss {loss.item():.3f} lr {opt.param_groups[0]['lr']:.5f} "
                      f"{time.time() - t0:.0f}s", flush=True)
            if time.time() >= deadline:
                break
        print(f"epoch {epoch}: {scores(model, val, real_held)}", flush=True)

    model.eval()
    dummy = torch.zeros(1, 1, H, W)
    torch.onnx.export(model, dummy, a.out, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13,
                      dynamo=False)
    print(f"wrote {a.out} ({os.path.getsize(a.out)} bytes), {step} steps, {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
