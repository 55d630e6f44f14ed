"""Shared fixtures: offline Hub, the smoke profile's tiny model and sample splits, built once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The Hub is unreachable here; offline mode makes that fail at once instead of after retries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from distilnb import Config

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("DISTILNB_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def torch_threads_kept():
    """Put torch's thread count back after each test that changed it (a benchmark's `main`, a command's --threads).

    Left at two threads, a pytest-xdist worker beside another busy worker oversubscribes the two cores, and OpenMP
    then waits on descheduled threads: in `make test` the smoke model's training fixture took 419 s instead of 11 s.
    """
    loaded = "torch" in sys.modules
    threads = sys.modules["torch"].get_num_threads() if loaded else None
    yield
    if "torch" not in sys.modules:
        return
    if threads is None and os.environ.get("OMP_NUM_THREADS", "").isdigit():
        threads = int(os.environ["OMP_NUM_THREADS"])  # torch's own default when the test imported it
    if threads is not None and sys.modules["torch"].get_num_threads() != threads:
        sys.modules["torch"].set_num_threads(threads)


@pytest.fixture(scope="module")
def one_thread():
    """Yield with torch on one thread: for tiny models on a busy 2-core machine, hand-offs cost more than maths."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
    from distilnb.models import load_tokenizer

    return load_tokenizer(smoke_cfg.resolved_model)


def write(path: Path, text: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to path and return it."""
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def tokenize_splits(splits, tokenizer, max_length: int):
    """The splits with input_ids and attention_mask, as the notebooks' `.map(tokenize, batched=True)` makes them."""
    return splits.map(lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length), batched=True)


@pytest.fixture(scope="session")
def tokenized(sample_splits, tokenizer, smoke_cfg):
    """The sample splits, tokenized at the smoke profile's max_length."""
    return tokenize_splits(sample_splits, tokenizer, smoke_cfg.max_length)


def fine_tune(cfg, splits, tokenized, tokenizer, callbacks=None, resume=False):
    """Return a Trainer after training the smoke model on the splits, as notebook 03 does."""
    from transformers import set_seed

    from distilnb import data, models, train

    set_seed(cfg.seed)
    model = models.load_classifier(cfg.resolved_model, data.label_names(splits))
    trainer = train.build_trainer(cfg, model, tokenized, tokenizer, callbacks)
    trainer.train(resume_from_checkpoint=train.last_checkpoint(cfg.paths.checkpoints) if resume else None)
    return trainer


@pytest.fixture(scope="session")
def trained(smoke_cfg, sample_splits, tokenized, tokenizer):
    """The smoke profile's Trainer run, once: (trainer, saved model folder with its run files)."""
    from distilnb import data, runs, train

    trainer = fine_tune(smoke_cfg, sample_splits, tokenized, tokenizer)
    folder = smoke_cfg.paths.model
    trainer.save_model(str(folder))
    sizes = {split: len(sample_splits[split]) for split in sample_splits}
    scores = train.validation_scores(trainer, tokenized["validation"], data.label_names(sample_splits))
    runs.write_run_files(smoke_cfg, trainer, sizes, scores, sample_splits)
    return trainer, folder
