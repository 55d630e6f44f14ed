"""Chapter 03, exercises 2 (the warm-up schedule) and 4 (early stopping in the plain loop)."""

import torch
from transformers import get_linear_schedule_with_warmup


def learning_rate_schedule(total_steps: int, warmup_steps: int, peak: float) -> list[float]:
    """Return the learning rate used at each optimizer step under the linear schedule with warm-up.

    The schedule only needs an optimizer to drive, so any model will do (here one linear layer). Before step k the
    optimizer uses `scheduler.get_last_lr()`: it climbs linearly from 0 to `peak` over `warmup_steps` steps (the first
    steps train a random head, and small steps keep its noise from wrecking the pretrained weights), then falls
    linearly to 0 at `total_steps`. The answer: the peak sits at step `warmup_steps`, and the rate after the last
    step is exactly 0 (the plain loop's check cell asserts the same).
    """
    optimizer = torch.optim.AdamW(torch.nn.Linear(1, 1).parameters(), lr=peak)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    rates = []
    for _ in range(total_steps):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


def should_stop(scores: list[float], patience: int) -> bool:
    """Return True when the best of the per-epoch validation scores is `patience` or more epochs old.

    In the loop of chapter 03, after each epoch's evaluation:
        f1_by_epoch.append(scores["eval_f1_macro"])
        if should_stop(f1_by_epoch, cfg.early_stopping_patience): break
    (and keep the best epoch's weights, as the Trainer's load_best_model_at_end does). The rule is the Trainer's
    EarlyStoppingCallback: an epoch that only ties the best does not count as an improvement.
    """
    if not scores:
        return False
    best_epoch = max(range(len(scores)), key=lambda i: (scores[i], -i))  # the first epoch that reached the best
    return len(scores) - 1 - best_epoch >= patience
