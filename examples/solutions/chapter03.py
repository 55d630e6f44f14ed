"""Chapter 03, exercise 2: the warm-up schedule, seen. (Exercise 4, early stopping: distilnb.solutions.should_stop.)"""

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
