"""What both trainers share: the run options (time budget, seed, threads)
and the optimisation step, a cosine decay of the learning rate over a
wall-clock budget (training stops at a deadline, not after a fixed number
of steps, so the schedule follows the clock)."""
import math
import time

import torch


def parse_args(ap):
    """Adds --minutes, --seed and --threads to `ap`, parses, and seeds
    torch and sets its threads from them."""
    ap.add_argument("--minutes", type=float, default=25)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    return a


def step(opt, loss, base_lr, start, deadline):
    frac = min(1.0, (time.time() - start) / (deadline - start))
    for group in opt.param_groups:
        group["lr"] = base_lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
    opt.zero_grad()
    loss.backward()
    opt.step()
