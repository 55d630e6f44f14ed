"""Stage 05: the Predictor and its int8 copy: caller's order, input checks, top-k, long texts, safety, load."""

from __future__ import annotations

import gc
import logging
import random
import warnings

import numpy as np
import pytest
import torch

from distilnb.models import load_classifier
from distilnb.predict import OnnxClassifier, Predictor
from distilnb.serving import CPU_BATCH_TOKENS

SYMBOLS = ("& login", ": late/lost", "👍", "question?", "— request")
REPEATED = "my parcel never arrived "  # four words, one token each


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a busy 2-core machine


def briefly_trained(model, tokenizer, texts: list[str], labels: list[int], steps: int = 80):
    """Return the model after a few AdamW steps on the sample data, in eval mode."""
    # A random head scores every text almost alike, which would let a mixed-up order or a poor int8 copy pass unseen.
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    targets = torch.tensor(labels)
    order = np.random.default_rng(0).permutation(len(texts))  # the file may be grouped by class
    model.train()
    for step in range(steps):
        rows = [int(order[(step * 32 + i) % len(texts)]) for i in range(32)]
        batch = tokenizer([texts[i] for i in rows], truncation=True, max_length=64, padding=True, return_tensors="pt")
        loss = model(**batch, labels=targets[rows]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def label_names(sample_splits) -> list[str]:
    """One name per sample-dataset label, with spaces, capitals and symbols that a model folder must keep."""
    names = sample_splits["train"].features["label"].names
    return [f"{name.title()} {SYMBOLS[i % len(SYMBOLS)]}" for i, name in enumerate(names)]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, smoke_cfg, sample_splits, tokenizer, label_names):
    """Return a saved classifier folder: the tiny DistilBERT, briefly trained, with label_names as its id2label."""
    torch.manual_seed(0)  # the new head's weights and the dropout
    model = load_classifier(smoke_cfg.resolved_model, label_names)
    train = sample_splits["train"]
    briefly_trained(model, tokenizer, list(train["text"]), list(train["label"]))
    folder = tmp_path_factory.mktemp("predict") / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def fp32(model_folder) -> Predictor:
    """Return the full-precision Predictor of the saved folder."""
    return Predictor.from_folder(model_folder, on="cpu")


@pytest.fixture(scope="module")
def int8(fp32) -> Predictor:
    """Return its int8 copy."""
    return fp32.quantized()


@pytest.fixture(params=["fp32", "int8"])
def predictor(request) -> Predictor:
    """Return each of the two predictors in turn, for the tests both must pass."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def sample_texts(sample_splits) -> list[str]:
    """Return every text of the sample dataset."""
    return [text for split in sample_splits.values() for text in split["text"]]


@pytest.fixture(scope="module")
def mixed_texts(sample_texts) -> list[str]:
    """Return 60 sample texts spread from the shortest to the longest, shuffled."""
    by_length = sorted(sample_texts, key=len)
    texts = by_length[:: len(by_length) // 59][:60]
    random.Random(0).shuffle(texts)
    return texts


def batch_tolerance(predictor: Predictor) -> float:
    """Return how far a text's logits may move with the batch around it: int8 scales its activations per batch."""
    return 0.5 if isinstance(predictor.model, OnnxClassifier) else 1e-5  # measured up to 0.4 for logits up to 4.5


def far_apart(rows: np.ndarray, gap: float) -> list[int]:
    """Return the indices of rows kept in turn, each differing from every row kept before by more than gap somewhere."""
    kept: list[int] = []
    for i, row in enumerate(rows):
        if all(np.abs(row - rows[j]).max() > gap for j in kept):
            kept.append(i)
    return kept


def resized(predictor: Predictor, **settings) -> Predictor:
    """Return a Predictor over the same network and tokenizer with other max_length or batch_size."""
    return Predictor(predictor.model, predictor.tokenizer, **settings)


# ---------------------------------------------------------------- order


def test_results_come_back_in_the_callers_order(predictor, mixed_texts):
    atol = batch_tolerance(predictor)
    one_by_one = np.concatenate([predictor.logits([text]) for text in mixed_texts])
    keep = far_apart(one_by_one, 2 * atol)  # texts that score differently enough for any swap between them to show
    texts, one_by_one = [mixed_texts[i] for i in keep], one_by_one[keep]
    lengths = [len(text) for text in texts]
    assert len(texts) >= 6 and lengths != sorted(lengths)  # otherwise sorting by length would be a no-op
    batched = predictor.logits(texts)
    assert np.allclose(batched, one_by_one, atol=atol)
    assert np.allclose(resized(predictor, batch_size=2).logits(texts), batched, atol=atol)


# ---------------------------------------------------------------- input checks

ENTRY_POINTS = {
    "predict": Predictor.predict,
    "logits": Predictor.logits,
    "probabilities": Predictor.probabilities,
    "chunked": lambda predictor, texts: predictor.probabilities(texts, chunk=True),
}


@pytest.mark.parametrize("call", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_bad_inputs_are_refused_with_the_index(predictor, call):
    with pytest.raises(TypeError, match="not one string"):
        call(predictor, "a single text")
    with pytest.raises(TypeError, match=r"Text 2 is a int"):
        call(predictor, ["fine", "also fine", 3])
    with pytest.raises(TypeError, match=r"Text 0 is a NoneType"):
        call(predictor, [None])
    with pytest.raises(ValueError, match=r"\[1, 3\]"):
        call(predictor, ["fine", "", "fine", " \n\t"])


def test_an_empty_list_gives_empty_results(predictor, label_names):
    assert predictor.predict([]) == []
    assert predictor.predict(iter([])) == []
    assert predictor.logits([]).shape == (0, len(label_names))
    assert predictor.probabilities([]).shape == (0, len(label_names))
    assert predictor.probabilities([], chunk=True).shape == (0, len(label_names))


# ---------------------------------------------------------------- top-k and scores


def test_top_k_keeps_the_most_likely_in_descending_order(predictor, sample_texts, label_names):
    texts = sample_texts[:20]
    probabilities = predictor.probabilities(texts)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    for row, full, top in zip(probabilities, predictor.predict(texts), predictor.predict(texts, top_k=2), strict=True):
        ranked = [label_names[i] for i in np.argsort(-row, kind="stable")]
        assert list(top["scores"]) == ranked[:2]
        assert list(full["scores"]) == ranked
        assert list(full["scores"].values()) == sorted(full["scores"].values(), reverse=True)
        assert sum(full["scores"].values()) == pytest.approx(1, abs=1e-5)
        assert top["label"] == full["label"] == ranked[0]
        assert top["score"] == full["score"] == max(full["scores"].values())
        assert top["score"] == pytest.approx(row.max(), abs=1e-6)
    assert predictor.predict_one(texts[0], top_k=1)["scores"].keys() == {label_names[int(probabilities[0].argmax())]}
    with pytest.raises(ValueError, match="top_k"):
        predictor.predict(texts, top_k=0)


def test_predictions_name_the_models_labels(fp32, sample_texts, label_names):
    assert fp32.label_names == label_names
    labels = {result["label"] for result in fp32.predict(sample_texts)}
    assert len(labels) >= 3  # the briefly trained model tells texts apart


# ---------------------------------------------------------------- long texts


def test_a_long_text_is_truncated_to_max_length(predictor):
    text = REPEATED * 500
    assert len(text.split()) == 2000
    first_words = " ".join(text.split()[: predictor.max_length - 2])  # [CLS] and [SEP] take two places
    assert np.allclose(predictor.logits([text]), predictor.logits([first_words]), atol=1e-5)


def windowed(predictor: Predictor) -> Predictor:
    """Return the predictor with 64-token windows, one per batch, so int8's per-batch scales leave comparisons exact."""
    return resized(predictor, max_length=64, batch_size=1)


def test_chunking_a_repeated_sentence_matches_one_window(predictor):
    short = windowed(predictor)
    # A window holds 62 tokens; with stride 30 windows start every 32 tokens, a multiple of the sentence's 4, so
    # 222 tokens make six identical full windows.
    words = (REPEATED * 60).split()
    one_window, text = " ".join(words[:62]), " ".join(words[:222])
    chunked = short.probabilities([text], chunk=True, stride=30)
    assert np.allclose(chunked, short.probabilities([one_window]), atol=1e-5)
    assert np.allclose(chunked.sum(), 1, atol=1e-5)


def test_chunking_averages_windows_and_sees_past_the_truncation(predictor):
    short = windowed(predictor)
    text = REPEATED * 25 + "i want my money back now " * 25
    windows = short.tokenizer(text, truncation=True, max_length=64, stride=16,
                              return_overflowing_tokens=True)["input_ids"]
    window_texts = short.tokenizer.batch_decode(windows, skip_special_tokens=True)
    assert len(window_texts) >= 5
    chunked = short.probabilities([text], chunk=True, stride=16)[0]
    assert np.allclose(chunked, short.probabilities(window_texts).mean(axis=0), atol=1e-5)
    assert np.abs(chunked - short.probabilities([text])[0]).max() > 0.05  # the second half changed the answer
    assert short.predict([text], chunk=True)[0]["score"] == pytest.approx(short.probabilities([text], chunk=True).max())


# ---------------------------------------------------------------- the transformers pipeline


def test_agrees_with_the_transformers_pipeline(fp32, model_folder, sample_texts):
    from transformers import pipeline

    classifier = pipeline("text-classification", model=str(model_folder), tokenizer=str(model_folder), top_k=None,
                          device="cpu")
    texts = sample_texts[:20]
    for ours, theirs in zip(fp32.predict(texts), classifier(texts), strict=True):
        assert ours["label"] == theirs[0]["label"]
        assert ours["score"] == pytest.approx(theirs[0]["score"], abs=1e-5)
        assert ours["scores"] == pytest.approx({entry["label"]: entry["score"] for entry in theirs}, abs=1e-5)


# ---------------------------------------------------------------- unsafe or incomplete folders


def test_a_folder_with_only_pickle_weights_is_refused(tmp_path, fp32):
    torch.save(fp32.model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"pytorch_model\.bin.*safetensors"):
        Predictor.from_folder(tmp_path)


def test_a_folder_without_a_tokenizer_is_refused(tmp_path, fp32):
    fp32.model.save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="holds no tokenizer.*tokenizer.json"):
        Predictor.from_folder(tmp_path)


# ---------------------------------------------------------------- under load


@pytest.mark.parametrize("max_tokens", [CPU_BATCH_TOKENS, None])
def test_thousands_of_texts_in_bounded_batches_with_a_progress_bar(predictor, capsys, monkeypatch, max_tokens):
    texts = [f"order {i} never arrived, please help" if i % 3 else f"refund {i}" for i in range(2_000)]
    shapes: list[tuple[int, int]] = []  # (texts, padded length) of each batch run
    monkeypatch.setattr(predictor, "max_tokens", max_tokens)  # the fixture is shared: restored after the test
    if isinstance(predictor.model, OnnxClassifier):
        session_call = OnnxClassifier.__call__

        def counted(self, **batch):
            shapes.append(tuple(batch["input_ids"].shape))
            return session_call(self, **batch)

        monkeypatch.setattr(OnnxClassifier, "__call__", counted)
        results = predictor.predict(texts)
    else:
        hook = predictor.model.register_forward_pre_hook(
            lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
        try:
            results = predictor.predict(texts)
        finally:
            hook.remove()
    assert len(results) == len(texts)
    assert sum(rows for rows, _ in shapes) == len(texts)
    if max_tokens is None:  # batch_size texts a batch, the last one aside
        assert all(rows == predictor.batch_size for rows, _ in shapes[:-1])
    else:  # the longer texts' batches hold fewer of them, within the token cap
        assert all(rows * length <= max_tokens for rows, length in shapes)
        assert max(rows for rows, _ in shapes) == predictor.batch_size > min(rows for rows, _ in shapes[:-1])
    assert "Predicting" in capsys.readouterr().err
    for i in (0, 1, 2, 999, 1_998, 1_999):
        alone = predictor.predict([texts[i]])[0]
        assert results[i]["scores"] == pytest.approx(alone["scores"], abs=batch_tolerance(predictor))


# ---------------------------------------------------------------- int8


def test_int8_agrees_with_full_precision(fp32, int8, sample_texts):
    full, quick = fp32.probabilities(sample_texts), int8.probabilities(sample_texts)
    agreement, gap = (full.argmax(axis=1) == quick.argmax(axis=1)).mean(), np.abs(full - quick).max()
    assert agreement >= 0.95
    assert 1e-3 < gap < 0.1  # int8 rounding shows, beyond the float noise of running the same network elsewhere


def test_making_the_int8_copy_shows_none_of_the_exporters_routine_notices(fp32, capfd, caplog):
    """No torchvision, axis-name, pytree or pre-processing notices reach the learner's cell; the filters do not leak."""
    filters_before, root_level = list(warnings.filters), logging.getLogger().level
    gc.collect()  # objects other tests left behind (an event loop) warn when collected: not inside the block below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fp32.quantized()
    printed = "".join(capfd.readouterr())
    # A ResourceWarning comes from the garbage collector finalising another test's leftovers, whenever it runs.
    assert not [str(w.message) for w in caught if not issubclass(w.category, ResourceWarning)]
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "torchvision" not in printed and "pre-processing" not in printed, printed
    assert warnings.filters == filters_before and logging.getLogger().level == root_level


def test_int8_is_a_cpu_onnx_predictor_with_the_same_settings(fp32, int8):
    assert isinstance(int8.model, OnnxClassifier)
    assert int8.model.session.get_providers() == ["CPUExecutionProvider"]
    assert (int8.label_names, int8.max_length, int8.batch_size) == (fp32.label_names, fp32.max_length, fp32.batch_size)
    assert int8.quantized() is int8


def test_the_int8_copy_keeps_a_changed_token_cap(fp32, monkeypatch):
    monkeypatch.setattr(fp32, "max_tokens", None)  # the fixture is shared: restored after the test
    assert fp32.quantized().max_tokens is None


def test_interactive_box_classifies_the_typed_text(monkeypatch, capsys):
    from distilnb import predict

    class Fixed:
        def predict_one(self, text, top_k=None):
            return {"scores": {"joy": 0.8, "fear": 0.2}}

    box = predict.interactive(Fixed())
    text, button = box.children[0].children
    text.value = "what a day"
    button.click()
    assert capsys.readouterr().out.splitlines()[-2:] == [f"{'joy':>20}   80.0%", f"{'fear':>20}   20.0%"]
    monkeypatch.setitem(__import__("sys").modules, "ipywidgets", None)
    assert "predict_one" in predict.interactive(Fixed())


def test_chunked_probabilities_average_each_texts_windows(tmp_path):
    from distilnb.config import Config

    predictor = Predictor.from_folder(Config.from_env(profile="smoke", environ={}).resolved_model, max_length=16)
    texts = ["short text", " ".join(["my parcel never arrived"] * 30), "another short one"]
    chunked = predictor.probabilities(texts, chunk=True)
    windows = predictor.tokenizer(texts, truncation=True, max_length=16, stride=8, return_overflowing_tokens=True)
    each = predictor._run(windows["input_ids"], False)
    owner = np.asarray(windows["overflow_to_sample_mapping"])
    from scipy.special import softmax

    expected = np.stack([softmax(each[owner == i], axis=-1).mean(axis=0) for i in range(len(texts))])
    assert np.allclose(chunked, expected, atol=1e-6)
    predictor.chunk = True  # the default of calls that do not say, so evaluate_split's logits(texts) chunks too
    assert np.allclose(softmax(predictor.logits(texts), axis=-1), expected, atol=1e-5)
