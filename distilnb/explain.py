"""Stage 05: why this label? Word attributions by Integrated Gradients over the input embeddings (Captum).

The method. Integrated Gradients compares the text with a *baseline* that carries no words: the same number of
tokens, ``[CLS]`` and ``[SEP]`` kept and every other token replaced by ``[PAD]``. It walks in ``n_steps`` small steps
along the straight line from the baseline's token embeddings to the text's, adds up the gradient of the target
class's logit at each step, and multiplies by the distance travelled in each embedding dimension. Summed over a
token's embedding dimensions that gives one number per token: positive pushes the logit toward the target class,
negative pulls it away. WordPiece pieces (``ref`` + ``##und``) are summed back into the words they came from.
The numbers obey *completeness*: over every token, special tokens included, they add up to
``logit(text) - logit(baseline)``, up to an error that shrinks as ``n_steps`` grows; each result carries that
error (``attrs["completeness_error"]``) so you can check it.

The limits. Attributions explain *this model*, not the truth: a word the model leans on for a wrong reason gets a
large attribution all the same, and a correct label may rest on a spurious word. They depend on the baseline (an
all-``[PAD]`` text is one choice of "no information"; another baseline gives other numbers) and on ``n_steps``
(too few steps break completeness: check the error). They describe one text at a time and say nothing about how
words interact; a long text is cut at the predictor's ``max_length``, and the words past the cut get nothing.

Needs the demo extra (``pip install -e ".[demo]"``) for Captum; the package imports it only when called.
"""

from __future__ import annotations

import html
import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from distilnb.errors import DistilnbError
from distilnb.serving import FolderTokenizer, OnnxClassifier

if TYPE_CHECKING:
    from types import ModuleType

    import torch
    from IPython.display import HTML
    from transformers import BatchEncoding

    from distilnb.predict import Predictor

EXTRA_HINT = 'pip install -e ".[demo]"'  # the optional dependencies of explain.py and demo.py
POSITIVE, NEGATIVE = (26, 150, 65), (215, 48, 39)  # green toward the target class, red away from it
MAX_BATCH_TOKENS = 16_384  # tokens per forward pass while integrating (n_steps copies of the text)


class MissingExtraError(DistilnbError, ImportError):
    """Raised when a package of the optional demo extra (captum, gradio) is not installed."""


def require(module: str, purpose: str) -> ModuleType:
    """Return an optional module, imported now; raise MissingExtraError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(f"{purpose} needs {module.split('.')[0]}, which is not installed: {EXTRA_HINT} "
                                "(or pip install captum gradio).") from error


# ---------------------------------------------------------------- attributions


def target_index(label_names: Sequence[str], target: int | str | None, predicted: int) -> int:
    """Return the class index to explain: the predicted one for None, else the given index or class name."""
    if target is None:
        return predicted
    if isinstance(target, str):
        if target not in label_names:
            raise ValueError(f"Unknown class {target!r}: the model's classes are {', '.join(label_names)}.")
        return list(label_names).index(target)
    if not 0 <= int(target) < len(label_names):
        raise ValueError(f"target = {target} is not a class index: use 0 to {len(label_names) - 1} or a class name.")
    return int(target)


def baseline_ids(input_ids: torch.Tensor, special_tokens_mask: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Return the baseline of a token-id row: special tokens ([CLS], [SEP]) kept, every other token [PAD]."""
    import torch

    return torch.where(special_tokens_mask.bool(), input_ids, torch.full_like(input_ids, pad_id))


def merge_to_words(text: str, word_ids: Sequence[int | None], offsets: Sequence[tuple[int, int]],
                   token_attributions: Sequence[float] | np.ndarray) -> pd.DataFrame:
    """Return one row per word (word, attribution, start, end), summing the attributions of its pieces in text order.

    word_ids and offsets come from a fast tokenizer's encoding (``word_ids()``, ``offset_mapping``); tokens whose
    word id is None (special tokens) are left out here. A word's text is cut from `text` at its pieces' offsets,
    so ``##`` pieces and lower-casing never show.
    """
    words: dict[int, list] = {}
    for word, (start, end), value in zip(word_ids, offsets, token_attributions, strict=True):
        if word is None:
            continue
        if word not in words:
            words[word] = [start, end, 0.0]
        entry = words[word]
        entry[0], entry[1], entry[2] = min(entry[0], start), max(entry[1], end), entry[2] + float(value)
    rows = [(text[start:end], value, start, end) for start, end, value in (words[w] for w in sorted(words))]
    frame = pd.DataFrame(rows, columns=["word", "attribution", "start", "end"])
    return frame.astype({"word": str, "attribution": float, "start": int, "end": int})


def word_attributions(predictor: Predictor, text: str, target: int | str | None = None, n_steps: int = 50, *,
                      second: str | None = None) -> pd.DataFrame:
    """Return each word's Integrated Gradients attribution toward `target` (default: the predicted class); with
    `second`, over both texts of the pair, encoded as the model reads them (a column `part`: 0 first, 1 second;
    start and end within that text; attrs["second"] holds it).

    Columns: word, attribution (positive pushes toward the target class), start and end (the word's characters
    in `text`), in text order. ``frame.attrs`` holds: text, target (class name), target_index, predicted,
    probability (the target's), logit and baseline_logit (the target's logit at the text and at the
    ``[CLS] [PAD]... [SEP]`` baseline), completeness_error (|sum of every token's attribution - (logit -
    baseline_logit)|, special tokens included), delta (Captum's signed convergence delta, the same quantity), n_steps,
    truncated (the text was cut at max_length), tokens and token_attributions (per token, specials included).
    """
    if not isinstance(text, str):
        raise TypeError(f"text is a {type(text).__name__}: pass one string.")
    if not text.strip():
        raise ValueError("The text is empty: there is nothing to explain.")
    if n_steps < 2:
        raise ValueError(f"n_steps = {n_steps}: use at least 2 (50 is a good start; more makes the error smaller).")
    import torch

    attr = require("captum.attr", "Word attributions")
    if isinstance(predictor.model, OnnxClassifier) or isinstance(predictor.tokenizer, FolderTokenizer):
        raise TypeError("Word attributions need the PyTorch model's gradients: explain with a Predictor on the model "
                        "folder, not on its ONNX export or its quantized() copy.")
    model, tokenizer = predictor.model, predictor.tokenizer
    embeddings = model.get_input_embeddings()
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("Word attributions need a fast tokenizer (word_ids and offsets): load it with use_fast=True.")
    if second is not None and not second.strip():
        raise ValueError("The second text is empty: a pair needs both texts.")
    encoding = tokenizer(text, second, truncation=True, max_length=predictor.max_length, return_tensors="pt",
                         return_offsets_mapping=True, return_special_tokens_mask=True)
    truncated = len(tokenizer(text, second)["input_ids"]) > encoding["input_ids"].shape[1]
    device = next(model.parameters()).device
    input_ids = encoding["input_ids"].to(device)
    # a pair's segment ids (0 first, 1 second) where the model reads them (BERT), as the Predictor passes them
    extra = (encoding["token_type_ids"].to(device),) if second is not None and "token_type_ids" in encoding else ()
    forward_args = (encoding["attention_mask"].to(device), *extra)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.unk_token_id
    reference = baseline_ids(input_ids, encoding["special_tokens_mask"].to(device), pad_id)

    def logits(ids: torch.Tensor, mask: torch.Tensor, *segments: torch.Tensor) -> torch.Tensor:
        rows = {"token_type_ids": segments[0].expand(ids.shape[0], -1)} if segments else {}
        return model(input_ids=ids, attention_mask=mask.expand(ids.shape[0], -1), **rows).logits.float()

    with torch.no_grad():
        at_text, at_baseline = logits(torch.cat([input_ids, reference]), *forward_args)
    names = list(predictor.label_names)
    index = target_index(names, target, int(at_text.argmax()))
    integrated = attr.LayerIntegratedGradients(logits, embeddings)
    attributions, delta = integrated.attribute(
        inputs=input_ids, baselines=reference, additional_forward_args=forward_args, target=index,
        n_steps=n_steps, internal_batch_size=max(1, min(n_steps, MAX_BATCH_TOKENS // input_ids.shape[1])),
        return_convergence_delta=True)
    per_token = attributions.sum(dim=-1)[0].detach().float().cpu().numpy().astype(np.float64)
    logit, baseline_logit = float(at_text[index]), float(at_baseline[index])
    frame = words_of_each_text(encoding, (text,) if second is None else (text, second), per_token)
    frame.attrs.update({
        "text": text, "target": names[index], "target_index": index, "predicted": names[int(at_text.argmax())],
        # a multi-label model scores each label on its own: the target's sigmoid, not a share of a softmax
        "probability": float(torch.sigmoid(at_text[index]) if getattr(predictor, "multi_label", False)
                             else torch.softmax(at_text, dim=-1)[index]),
        "logit": logit, "baseline_logit": baseline_logit,
        "completeness_error": abs(float(per_token.sum()) - (logit - baseline_logit)),
        "delta": float(delta.reshape(-1)[0]),
        "n_steps": n_steps, "truncated": truncated,
        "tokens": tokenizer.convert_ids_to_tokens(encoding["input_ids"][0].tolist()),
        "token_attributions": per_token.tolist(),
        **({"second": second} if second is not None else {}),
    })
    return frame


def words_of_each_text(encoding: BatchEncoding, texts: Sequence[str], per_token: np.ndarray) -> pd.DataFrame:
    """Return merge_to_words of one text, or of each text of a pair (a column `part`, 0 or 1), from its encoding."""
    offsets, word_ids = encoding["offset_mapping"][0].tolist(), encoding.word_ids(0)
    if len(texts) == 1:
        return merge_to_words(texts[0], word_ids, offsets, per_token)
    sequence = encoding.sequence_ids(0)
    frames = [merge_to_words(source, [w if s == part else None for w, s in zip(word_ids, sequence, strict=True)],
                             offsets, per_token).assign(part=part) for part, source in enumerate(texts)]
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- showing them


def _scaled(values: pd.Series) -> np.ndarray:
    """Return attributions divided by the largest magnitude among them (all in [-1, 1]; zeros stay zeros)."""
    values = np.asarray(values, dtype=float)
    largest = np.abs(values).max() if len(values) else 0.0
    return values / largest if largest > 0 else values


def _colour(value: float) -> str:
    """Return an rgba colour for a scaled attribution: green for positive, red for negative, stronger when larger."""
    red, green, blue = POSITIVE if value >= 0 else NEGATIVE
    return f"rgba({red}, {green}, {blue}, {min(1.0, abs(value)) * 0.8:.2f})"


def _heading(attributions: pd.DataFrame) -> str:
    """Return the line above a display: the class explained, its probability and the completeness error."""
    info = attributions.attrs
    if "target" not in info:
        return "Word attributions"
    line = f"Toward {info['target']!r} (probability {info['probability']:.1%})"
    if info.get("predicted") not in (None, info["target"]):
        line += f"; the model predicts {info['predicted']!r}"
    return line + f"; completeness error {info['completeness_error']:.2g} over {info['n_steps']} steps"


def html_text(attributions: pd.DataFrame) -> str:
    """Return the text as an HTML fragment, each word shaded by its attribution, with a heading and a legend."""
    text = attributions.attrs.get("text")
    shades = _scaled(attributions["attribution"])
    parts, cursor = [], 0
    for (_, row), shade in zip(attributions.iterrows(), shades, strict=True):
        if text is not None and "start" in row:
            parts.append(html.escape(text[cursor:int(row["start"])]))
            cursor = int(row["end"])
        elif parts:
            parts.append(" ")
        parts.append(f'<span title="{row["attribution"]:+.3f}" style="background:{_colour(shade)};'
                     f'padding:1px 2px;border-radius:3px">{html.escape(str(row["word"]))}</span>')
    if text is not None:
        parts.append(html.escape(text[cursor:]))
    target = html.escape(str(attributions.attrs.get("target", "the class")))
    legend = (f'<span style="background:{_colour(1)};padding:1px 4px">toward {target}</span> '
              f'<span style="background:{_colour(-1)};padding:1px 4px">away from {target}</span> '
              "(shade: size of the attribution; hover a word for its value)")
    return (f'<div style="font-family:sans-serif;line-height:1.9"><div><b>{html.escape(_heading(attributions))}</b>'
            f'</div><div style="font-size:1.1em">{"".join(parts)}</div><div style="font-size:0.85em;color:#555">'
            f"{legend}</div></div>")


def as_html(attributions: pd.DataFrame) -> HTML:
    """Return the text coloured by its word attributions (green toward the class, red away), for a notebook."""
    from IPython.display import HTML

    return HTML(html_text(attributions))


def attribution_figure(attributions: pd.DataFrame, top: int | None = 30) -> Figure:
    """Return a horizontal bar chart of the word attributions in text order (the `top` largest by size, if set)."""
    shown = attributions
    if top is not None and len(shown) > top:
        shown = shown.loc[shown["attribution"].abs().nlargest(top).index].sort_index()
    height = 1.4 + 0.32 * max(len(shown), 1)
    figure = Figure(figsize=(6.4, height), layout="constrained")
    axes = figure.add_subplot()
    positions = np.arange(len(shown))
    values = shown["attribution"].to_numpy(dtype=float)
    colours = [tuple(c / 255 for c in (POSITIVE if v >= 0 else NEGATIVE)) for v in values]
    axes.barh(positions, values, color=colours)
    axes.set_yticks(positions, [str(word) for word in shown["word"]])
    axes.invert_yaxis()  # the first word on top, as it is read
    axes.axvline(0, color="black", linewidth=0.8)
    target = attributions.attrs.get("target", "the class")
    axes.set_xlabel(f"attribution (right: toward {target!r}, left: away)")
    axes.set_title(_heading(attributions), fontsize=9)
    return figure
