"""The optimisation step both trainers share: cosine decay of the
learning rate over a wall-clock budget (training stops at a deadline, not
after a fixed number of steps, so the schedule follows the clock)."""
import math
import time


def step(opt, loss, base_lr, start, deadline):
    frac = min(1.0, (time.time() - start) / (deadline - start))
    for group in opt.param_groups:
        group["lr"] = base_lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
    opt.zero_grad()
    loss.backward()
    opt.step()
