"""Chapter 07, exercises 1 to 3: the best-of-n trap measured, whether a gap is noise, and the pruning rule."""

import math
import statistics

import numpy as np
import pandas as pd


def best_of_n_gain(accuracy: float = 0.8, rows: int = 187, trials=(1, 3, 10, 30), repeats: int = 2000,
                   seed: int = 0) -> pd.Series:
    """Return, per number of trials n, how far the best of n validation accuracies lies above the true accuracy, on
    average, when all n settings are exactly as good.

    Each trial's validation accuracy is a draw of `rows` texts, each right with probability `accuracy`; choosing the
    best of n keeps the luckiest draw. The gain is 0 for one trial, grows with n (slowly: roughly with the square root
    of log n) and shrinks with the square root of the rows: ten times the validation texts, about a third of the
    flattery. The winner's test score, drawn afresh, has no such gain: that is why the test split is scored once.
    """
    rng = np.random.default_rng(seed)
    scores = rng.binomial(rows, accuracy, size=(repeats, max(trials))) / rows
    return pd.Series({n: float(scores[:, :n].max(axis=1).mean() - accuracy) for n in trials},
                     name=f"best-of-n gain, {rows} rows").rename_axis("trials")


def accuracy_interval(correct: int, rows: int, z: float = 1.96) -> tuple[float, float]:
    """Return the Wilson interval (95 in 100 by default) of an accuracy of `correct` right out of `rows`.

    On 187 validation texts an accuracy near 0.8 is known only to about ±0.06: two settings whose scores differ by
    less than that may be equally good. (Two settings scored on the same texts are better compared pair by pair,
    with McNemar's test, but the interval gives the scale at a glance.)
    """
    share = correct / rows
    centre = (share + z * z / (2 * rows)) / (1 + z * z / rows)
    half = z * math.sqrt(share * (1 - share) / rows + z * z / (4 * rows * rows)) / (1 + z * z / rows)
    return centre - half, centre + half


def should_prune(mine: list[float], finished: list[list[float]], startup_trials: int = 2,
                 first_judged_epoch: int = 2) -> bool:
    """Return whether a trial whose scores so far are `mine` (one an epoch) stops: its latest is below the median of
    the finished trials' scores at the same epoch; never before its `first_judged_epoch`-th epoch, nor before
    `startup_trials` trials have finished.

    Epochs, not optimizer steps, line the trials up: with the batch size searched, the same step is another point of
    training in each trial. A finished trial shorter than this one has no score at this epoch and is left out. The
    first epoch is not judged: it holds the warm-up, and a trial slow to start can still end first.
    """
    if len(mine) < first_judged_epoch or len(finished) < startup_trials:
        return False
    others = [scores[len(mine) - 1] for scores in finished if len(scores) >= len(mine)]
    return bool(others) and mine[-1] < statistics.median(others)
