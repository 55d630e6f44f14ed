"""Pairs of texts: the order-free leakage key, the pair-encoding check, the TF-IDF pair baseline, the pair data file."""

import pandas as pd
import pytest
from conftest import ROOT

from distilnb import baselines, pairs
from distilnb.errors import DataError


def test_a_pair_counts_as_seen_in_either_order_and_despite_case_and_spacing():
    assert pairs.pair_key("Where is it?", "At the depot.") == pairs.pair_key("at the  depot.", "where is it?")
    assert pairs.pair_key("a", "b") != pairs.pair_key("a", "c")
    train_first, train_second = ["Where is it?", "Refund me"], ["At the depot.", "Done."]
    assert pairs.seen_pairs(train_first, train_second, ["at the depot.", "Where is it?", "Refund me"],
                            ["Where is it?", "Done.", "Done."]) == [0, 2]


@pytest.fixture(scope="module")
def bert_tokenizer(tokenizer):
    return tokenizer  # the tiny test DistilBERT's BERT tokenizer


def test_a_pair_encoded_with_the_tokenizer_passes(bert_tokenizer):
    encoding = bert_tokenizer("where is my parcel", "it is at the depot", return_token_type_ids=True)
    assert pairs.expected_separators(bert_tokenizer) == 2
    pairs.check_pair_encoding(encoding["input_ids"], bert_tokenizer, encoding["token_type_ids"])


def test_a_pair_joined_into_one_string_is_caught(bert_tokenizer):
    joined = bert_tokenizer("where is my parcel it is at the depot")
    with pytest.raises(DataError, match="holds 1 separator token .* where a pair has 2"):
        pairs.check_pair_encoding(joined["input_ids"], bert_tokenizer)


def test_a_pair_with_its_middle_separator_removed_is_caught_and_padding_is_ignored(bert_tokenizer):
    encoding = bert_tokenizer("where is my parcel", "it is at the depot", padding="max_length", max_length=20)
    pairs.check_pair_encoding(encoding["input_ids"], bert_tokenizer)
    ids = list(encoding["input_ids"])
    ids.remove(bert_tokenizer.sep_token_id)
    with pytest.raises(DataError, match="holds 1 separator"):
        pairs.check_pair_encoding(ids, bert_tokenizer)


def test_a_text_containing_the_separator_spelling_is_caught(bert_tokenizer):
    encoding = bert_tokenizer("where is my parcel [SEP] now", "at the depot")
    with pytest.raises(DataError, match="holds 3 separator"):
        pairs.check_pair_encoding(encoding["input_ids"], bert_tokenizer)


def test_segment_ids_must_switch_from_0_to_1_after_the_first_separator(bert_tokenizer):
    encoding = bert_tokenizer("where is my parcel", "at the depot", return_token_type_ids=True)
    pairs.check_pair_encoding(encoding["input_ids"], bert_tokenizer, encoding["token_type_ids"])
    types = list(encoding["token_type_ids"])
    with pytest.raises(DataError, match="token_type_ids"):
        pairs.check_pair_encoding(encoding["input_ids"], bert_tokenizer, [0] * len(types))
    with pytest.raises(DataError, match="token_type_ids"):
        pairs.check_pair_encoding(encoding["input_ids"], bert_tokenizer, [0, *types[:-1]])


def test_the_tfidf_pair_baseline_learns_word_overlap():
    words = ["parcel", "refund", "password", "edition", "puzzle", "voucher"]
    first = [f"my {word} problem" for word in words] * 2
    second = [f"your {word} answer" for word in words] + [f"your {words[i - 1]} answer" for i in range(len(words))]
    labels = [1] * len(words) + [0] * len(words)
    probabilities = baselines.tfidf_pair_probabilities(first, second, labels,
                                                       ["my refund problem", "my refund problem"],
                                                       ["your refund answer", "your puzzle answer"])
    assert probabilities[0] > 0.5 > probabilities[1]


def test_the_pair_file_is_balanced_enough_shares_no_text_and_has_word_traps():
    frame = pd.read_csv(ROOT / "data" / "ticket_pairs.csv")
    assert 300 <= len(frame) <= 1500
    assert 0.35 <= (frame["label"] == "same_team").mean() <= 0.65
    assert set(frame["kind"]) == {f"{team}, {words}" for team in ("same_team", "different_team")
                                  for words in ("shared_words", "no_shared_words")}
    assert (frame["kind"].str.split(",").str[0] == frame["label"]).all()
    texts = pd.concat([frame["first"], frame["second"]])
    assert texts.is_unique  # each text in one pair: no text reaches two splits
    multilabel = pd.read_csv(ROOT / "data" / "support_tickets_multilabel.csv")["text"]
    assert not any(text in joined for text in texts for joined in multilabel)
