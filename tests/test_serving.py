"""Scoring without the training stack: the folder tokenizer against transformers', padding, the config, threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distilnb import hardware, serving

TEXTS = ["Where is my PARCEL?", "Café naïve résumé — 東京, and an emoji 🙂", "refund " * 200, "",
         "  spaced   out  ", "don't won't x-ray e-mail 3.14 #hashtag @someone"]


@pytest.fixture(scope="module")
def folder_tokenizer(tokenizer, tmp_path_factory) -> serving.FolderTokenizer:
    """The tests' real tokenizer saved as a model folder holds it (its last truncation and padding recorded too)."""
    folder = tmp_path_factory.mktemp("tokenizer")
    tokenizer(["a few words", "padded to the longest"], truncation=True, max_length=7, padding=True)
    tokenizer.save_pretrained(folder)
    return serving.FolderTokenizer(folder)


@pytest.mark.parametrize("max_length", [16, 64, 512])
def test_the_folder_tokenizer_gives_transformers_ids_for_texts_pairs_and_windows(tokenizer, folder_tokenizer,
                                                                                   max_length):
    pairs = [(first, second) for first in TEXTS for second in TEXTS[:3]]
    firsts, seconds = [first for first, _ in pairs], [second for _, second in pairs]
    for args in ((TEXTS, None), (firsts, seconds)):
        ours, theirs = folder_tokenizer(*args, truncation=True, max_length=max_length), tokenizer(
            *args, truncation=True, max_length=max_length)
        # segment ids too, where the model takes them (this DistilBERT tokenizer's model does not: the graph has none)
        assert {"input_ids", "attention_mask"} <= set(theirs) and all(ours[key] == theirs[key] for key in theirs)
    stride = min(32, max_length // 2)
    ours = folder_tokenizer(TEXTS, truncation=True, max_length=max_length, stride=stride,
                            return_overflowing_tokens=True)
    theirs = tokenizer(TEXTS, truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True)
    assert ours["input_ids"] == theirs["input_ids"]
    assert ours["overflow_to_sample_mapping"] == list(theirs["overflow_to_sample_mapping"])


def test_the_folder_tokenizer_reads_whole_texts_single_strings_and_its_padding_token(tokenizer, folder_tokenizer):
    assert folder_tokenizer(TEXTS, truncation=False)["input_ids"] == tokenizer(TEXTS)["input_ids"]
    assert len(folder_tokenizer(TEXTS[2])["input_ids"]) > 400  # not the 7 the saved file's truncation says
    assert folder_tokenizer(TEXTS[0])["input_ids"] == tokenizer(TEXTS[0])["input_ids"]
    assert folder_tokenizer.pad_token_id == tokenizer.pad_token_id
    assert folder_tokenizer.model_max_length == tokenizer.model_max_length


def test_padded_batches_pad_right_with_the_padding_id_and_mask_it():
    batch = serving.padded({"input_ids": [[101, 7, 102], [101, 102]], "token_type_ids": [[0, 0, 1], [0, 0]]}, 9)
    assert batch["input_ids"].tolist() == [[101, 7, 102], [101, 102, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 1], [0, 0, 0]]


def test_batched_rows_come_back_in_input_order_from_batches_sorted_by_length():
    input_ids = [[1] * n for n in (5, 1, 9, 3, 7, 2)]
    widths = []

    def lengths(features: serving.Features) -> np.ndarray:
        widths.append([len(ids) for ids in features["input_ids"]])
        return np.array([[len(ids)] for ids in features["input_ids"]], dtype=np.float32)

    rows = serving.batched_rows(input_ids, 2, lengths, 1)
    assert rows[:, 0].tolist() == [5, 1, 9, 3, 7, 2]
    assert widths == [[1, 2], [3, 5], [7, 9]]
    assert serving.batched_rows([], 2, lengths, 4).shape == (0, 4)


def test_length_sorted_batches_cap_the_padded_tokens_of_a_batch_and_keep_every_input():
    lengths = [5, 1, 9, 3, 7, 2, 300]
    capped = serving.length_sorted_batches(lengths, 3, max_tokens=10)
    assert [[lengths[i] for i in batch] for batch in capped] == [[1, 2, 3], [5], [7], [9], [300]]
    uncapped = serving.length_sorted_batches(lengths, 3)
    assert [[lengths[i] for i in batch] for batch in uncapped] == [[1, 2, 3], [5, 7, 9], [300]]
    assert sorted(np.concatenate(capped).tolist()) == list(range(len(lengths)))
    at_the_cap = serving.length_sorted_batches(lengths, 3, max_tokens=9)  # 3 texts x 3 tokens: exactly the cap
    assert [lengths[i] for i in at_the_cap[0]] == [1, 2, 3]


@pytest.mark.parametrize("saved", [{"id2label": {"1": "spam", "0": "ham", "2": "eggs"},
                                     "problem_type": "multi_label_classification", "max_position_embeddings": 128},
                                    {"model_type": "bert"}, {"num_labels": 3}])
def test_a_config_is_read_without_transformers_as_transformers_reads_it(tmp_path, saved):
    from transformers import AutoConfig

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", **saved}))
    ours, theirs = serving.ClassifierConfig.from_folder(tmp_path), AutoConfig.from_pretrained(tmp_path)
    assert ours.id2label == theirs.id2label and ours.num_labels == theirs.num_labels
    assert (ours.problem_type, ours.max_position_embeddings) == (theirs.problem_type, theirs.max_position_embeddings)


@pytest.mark.parametrize(("system", "driver", "expected"), [("Linux", False, False), ("Linux", True, True),
                                                            ("Darwin", True, False), ("Windows", False, True)])
def test_a_gpu_is_ruled_out_only_where_torch_could_not_find_one(monkeypatch, tmp_path, system, driver, expected):
    monkeypatch.setattr(hardware.platform, "system", lambda: system)
    monkeypatch.setattr(hardware, "GPU_DRIVERS", (tmp_path / ("gpus" if driver else "none"),))
    (tmp_path / "gpus").mkdir()
    assert hardware.may_have_gpu() is expected


def test_threads_set_before_torch_is_loaded_reach_onnx_runtime_and_then_torch():
    check = ("import sys\nfrom distilnb import models, serving\nmodels.set_threads(1)\n"
             "print(serving.cpu_threads(), 'torch' in sys.modules)\nimport torch\nprint(torch.get_num_threads())")
    environ = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120, env=environ,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "False", "1"]
