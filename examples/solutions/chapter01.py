"""Chapter 01, exercises 2 (why stratify?) and 4 (leakage)."""

from dataclasses import replace

import numpy as np
import pandas as pd

from distilnb import data
from distilnb.config import Config


def share_spread(dataset, label_column: str = "label", seeds=range(20), test_size: float = 0.1) -> pd.DataFrame:
    """Return how far the smallest class's share in the test part strays from its share in the whole dataset.

    `dataset` is a `datasets.Dataset` whose label column is a ClassLabel (after `class_encode_column`). For each seed it
    is split with `train_test_split`, once plainly and once with `stratify_by_column`; the table gives, per way, the
    smallest and largest test share of the smallest class and the largest gap to its overall share.

    The answer: a stratified split keeps the class's share to within one example of the whole (the gap is at most
    1 / test rows); a plain random split lets it wander by several points, enough on a small test split to make a
    class's recall rest on a handful of texts, and to change from one seed to the next.
    """
    labels = np.asarray(dataset[label_column])
    smallest = int(np.bincount(labels).argmin())
    overall = float((labels == smallest).mean())
    rows = {}
    for name, stratify in (("random", None), ("stratified", label_column)):
        shares = []
        for seed in seeds:
            test = dataset.train_test_split(test_size=test_size, stratify_by_column=stratify, seed=seed)["test"]
            shares.append(float((np.asarray(test[label_column]) == smallest).mean()))
        rows[name] = {
            "overall share": overall,
            "lowest test share": min(shares),
            "highest test share": max(shares),
            "largest gap": max(abs(share - overall) for share in shares),
        }
    table = pd.DataFrame(rows).T
    table.attrs["class"] = dataset.features[label_column].int2str(smallest)
    return table


def leakage_drops(cfg: Config) -> dict[str, int]:
    """Return the rows dropped per reason when the same data is loaded with drop_duplicates=True (01, exercise 4)."""
    _, report = data.load_splits(replace(cfg, drop_duplicates=True))
    return report.dropped
