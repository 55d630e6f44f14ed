"""The verdict after a training run: what the scores and the run's own record say to change, as data.

advise(Evidence) returns a list of Advice, most likely cause first. Each names a setting (epochs, class_weights,
max_length) and a value, or none, never a flag: words(name_of) spells the setting as the reader types it
(a notebook parameter, or the command line's flag).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from distilnb.config import MULTI_LABEL, SINGLE_LABEL, SKEWED_CLASS_SHARE
from distilnb.errors import _Spelling
from distilnb.metrics import FINE_TUNED, MAJORITY, TFIDF, TFIDF_ONE_VS_REST

CUT_SHARE = 0.05  # texts cut at max_length worth naming as a cause
# Not for pairs: a pair is cut from its longer text, and on RTE (38 % of the pairs cut at 64 tokens) max_length 200
# gave the same mean over five seeds, validation macro-F1 0.558 against 0.559 and dev accuracy 0.557 against 0.556
# (benchmarks/RESULTS.md section 34). Advice is given only where following it was measured to help.
CUT_ADVISED_TASKS = (SINGLE_LABEL, MULTI_LABEL)
# Class weights are advised only where benchmarks/RESULTS.md measured them to help. One label a text: past the share
# at which a run that leaves them unset turns them on (emotion cut to joy 74 %: +0.36 macro-F1, section 9); not on
# the 413 ticket pairs (one class 58 %: validation 0.617 without, 0.606 with, section 21), nor on a balanced pair of
# classes such as RTE's (50.2 %). Several labels: a label on under 3 % of the texts (GoEmotions' 28 labels, rarest
# 0.18 %: +0.17 on test, section 14; the multi-label sample, rarest 2.6 %: validation 0.777 to 0.847, section 21).
ADVISED_CLASS_SHARE = SKEWED_CLASS_SHARE
ADVISED_RARE_LABEL_SHARE = 0.03
# A validation split smaller than this cannot choose a checkpoint: on 25 rows one text moves accuracy by 4 points, and
# on the 250-pair set early stopping kept the first epoch whatever --epochs said (issue 30).
MIN_VALIDATION_ROWS, MIN_VALIDATION_CLASS = 100, 5


@dataclass(frozen=True)
class Advice:
    """One finding: why (reason, with {setting} names in braces), and the setting to change and its value, if any."""

    reason: str
    setting: str | None = None
    value: object = None

    def words(self, name_of: Callable[[str], str] = str) -> str:
        """Return the sentence with every setting spelt by name_of: `epochs = 6` as a parameter, `--epochs 6` as a
        flag (a name spelt with a leading '-' takes its value after a space; a flag for True stands alone)."""
        said = self.reason.format_map(_Spelling(name_of))
        if self.setting is None or self.value is None:
            return said
        name = name_of(self.setting)
        flag = name.startswith("-")
        if flag and self.value is True:
            return f"{said}: try {name}"
        shown = f"{self.value:g}" if isinstance(self.value, float) else str(self.value)
        return f"{said}: try {name}{' ' if flag else ' = '}{shown}"


@dataclass(frozen=True)
class Evidence:
    """What a finished run shows: validation scores per model row, its epochs, and its data's shape.

    rows: validation scores by metrics row name (FINE_TUNED, with MAJORITY and TFIDF for one label a text, or
    TFIDF_ONE_VS_REST for several); epochs: the setting; best_epoch: the epoch of the checkpoint kept (None: not
    known); epochs_run: the epochs trained before the run ended (early stopping may end it sooner);
    largest_class_share and rarest_share: the training rows' shares of the most and least frequent class (or label);
    cut_share: the share of training texts longer than max_length.
    """

    task: str
    rows: dict[str, dict]
    epochs: float
    best_epoch: float | None
    epochs_run: float
    validation_rows: int
    smallest_validation_class: int
    largest_class_share: float
    rarest_share: float
    cut_share: float
    class_weights: bool


def advise(evidence: Evidence) -> list[Advice]:
    """Return the verdict: a too-small validation split (whatever the scores), then, when the fine-tuned model's
    macro-F1 is at or below the majority class's or below TF-IDF's, that finding and its likely causes, most likely
    first; `tune` when no single setting explains the loss. Empty when there is nothing to say."""
    said = small_validation(evidence)
    loss = lost_to(evidence.rows)
    if loss is None:
        return said
    causes = likely_causes(evidence)
    if not causes:
        causes = [Advice("no single setting explains it: let `distilnb tune` (distilnb.tune.search) choose the "
                         "learning rate, epochs, batch size and class weights together")]
    return [Advice(loss), *causes, *said]


def lost_to(rows: dict[str, dict]) -> str | None:
    """Return 'the model's macro-F1 (x) is below TF-IDF (y)' (or no better than the majority class), or None when the
    fine-tuned model beats its baselines."""
    model = rows[FINE_TUNED]["f1_macro"]
    several = TFIDF_ONE_VS_REST in rows  # several labels a text: no majority class
    majority = None if several else rows[MAJORITY]["f1_macro"]
    tfidf = rows[TFIDF_ONE_VS_REST if several else TFIDF]["f1_macro"]
    if (majority is None or model > majority) and model >= tfidf:
        return None
    beaten = (f"no better than the majority class ({majority:.3f})" if majority is not None and model <= majority
              else f"below TF-IDF ({tfidf:.3f})")
    return f"the fine-tuned model's validation macro-F1 ({model:.3f}) is {beaten}"


def likely_causes(evidence: Evidence) -> list[Advice]:
    """Return the settings that may explain a loss to the baselines, in the order measured most often."""
    several = TFIDF_ONE_VS_REST in evidence.rows
    causes = []
    if more_epochs_can_help(evidence):
        causes.append(Advice(f"too few epochs ({evidence.epochs:g})", "epochs", max(2 * evidence.epochs, 3.0)))
    if not several and evidence.largest_class_share > ADVISED_CLASS_SHARE and not evidence.class_weights:
        causes.append(Advice(f"one class holds {evidence.largest_class_share:.0%} of the training rows",
                             "class_weights", True))
    if several and evidence.rarest_share < ADVISED_RARE_LABEL_SHARE and not evidence.class_weights:
        causes.insert(0, Advice(f"the rarest label is on {evidence.rarest_share:.1%} of the training texts",
                                "class_weights", True))
    if evidence.cut_share > CUT_SHARE and evidence.task in CUT_ADVISED_TASKS:
        causes.append(Advice(f"{evidence.cut_share:.0%} of the training texts were cut at {{max_length}}: try a "
                             "longer one, or score long texts in windows (chunk)", "max_length"))
    return causes


def more_epochs_can_help(evidence: Evidence) -> bool:
    """Return whether more epochs could change the model kept: only when the best checkpoint was the run's last (the
    score still rising when the epochs ran out); not when early stopping ended the run or an earlier epoch was kept
    (the 250-pair set kept its first of six), since then the limit on epochs was not what stopped it."""
    if evidence.best_epoch is None:
        return True
    stopped_early = evidence.epochs_run < evidence.epochs - 1e-6
    best_at_end = evidence.best_epoch >= evidence.epochs_run - 1e-6
    return best_at_end and not stopped_early


def small_validation(evidence: Evidence) -> list[Advice]:
    """Return the finding that the validation split is too small to choose a checkpoint on (under 100 rows, or a class
    with under 5), with `distilnb tune`'s k-fold cross-validation as the fix. Not a larger validation_size: on 250
    sample tickets, 100 validation rows instead of 25 lowered test macro-F1 in each of three seeds (0.877 to 0.820 on
    average; benchmarks/RESULTS.md section 35), since they come out of the training rows."""
    rows, smallest = evidence.validation_rows, evidence.smallest_validation_class
    if rows >= MIN_VALIDATION_ROWS and smallest >= MIN_VALIDATION_CLASS:
        return []
    what = (f"{rows} rows" if rows < MIN_VALIDATION_ROWS else f"{rows} rows, but a class on only {smallest}")
    return [Advice(f"the validation split ({what}) is too small to choose the checkpoint or compare models on: read "
                   "its scores as rough, or let `distilnb tune` choose by k-fold cross-validation over the training "
                   "rows (a larger {validation_size} would take its rows from training)")]


def sentence(advice: list[Advice], name_of: Callable[[str], str] = str) -> str | None:
    """Return the verdict as one warning: the finding, then its causes, most likely first (None when empty)."""
    if not advice:
        return None
    first, *rest = (a.words(name_of) for a in advice)
    if not rest:
        return f"Warning: {first}."
    return f"Warning: {first}. Likely causes, most likely first: {'; '.join(rest)}."
