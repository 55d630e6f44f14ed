"""`distilnb download`: on a machine with network, cache what the course needs for an offline classroom."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from distilnb.cli import options
from distilnb.cli.options import UsageError, err
from distilnb.config import ENV_PREFIX, Config

PUBLISHED_MODEL = "bhadresh-savani/distilbert-base-uncased-emotion"  # chapters 04/05 use it when 03 was skipped
# What loading a model needs from its Hub repository: configuration, tokenizer files and safetensors weights only.
MODEL_FILES = ["config.json", "*.safetensors", "*.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "spiece.model"]


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Add `download`."""
    download = subcommands.add_parser(
        "download", help="pre-download for an offline classroom",
        description="On a machine with network: cache the profile's model (config, tokenizer, safetensors) and "
                    "dataset, and the published fine-tuned checkpoint, in HF_HOME; then copy that folder to machines "
                    "without network.")
    download.add_argument("--published", default=PUBLISHED_MODEL,
                          help="fine-tuned checkpoint chapters 04/05 use when 03 was skipped "
                               f"(default: {PUBLISHED_MODEL})")
    download.add_argument("--no-published", dest="published", action="store_const", const=None,
                          help="do not download the published checkpoint")
    options.add_settings(download, ("model", "dataset"), profile="full")
    download.set_defaults(run=run)


def download_model(model: str) -> str:
    """Return the local snapshot folder of a Hub model, downloading its config, tokenizer and safetensors weights."""
    from huggingface_hub import snapshot_download

    from distilnb.errors import from_hub

    folder = from_hub(f"the model {model!r}", lambda: snapshot_download(model, allow_patterns=MODEL_FILES))
    if not list(Path(folder).glob("*.safetensors")):
        err(f"Warning: {model} has no .safetensors weights, and distilnb will not load pickle weights.")
    return folder


def download_dataset(dataset: str) -> str:
    """Return a line naming a Hub dataset's splits and sizes and the cache holding it, once load_dataset cached it."""
    import datasets

    from distilnb.errors import from_hub

    loaded = from_hub(f"the dataset {dataset!r}", lambda: datasets.load_dataset(dataset))
    return f"{ {split: len(table) for split, table in loaded.items()} } in {datasets.config.HF_DATASETS_CACHE}"


def downloads(cfg: Config, published: str | None) -> list[tuple[str, str, Callable[[str], object] | None]]:
    """Return (what, name, fetch) per thing the profile needs; fetch is None for what is local."""
    from distilnb.models import is_hub_id

    fetchers: list[tuple[str, str, Callable[[str], object]]] = [("model", cfg.model, download_model),
                                                                 ("dataset", cfg.dataset, download_dataset)]
    items: list[tuple[str, str, Callable[[str], object] | None]] = [
        (what, name, fetch if is_hub_id(name) else None) for what, name, fetch in fetchers]
    return items + ([("published checkpoint", published, download_model)] if published else [])


def run(args: argparse.Namespace) -> None:
    """Cache the profile's model and dataset and the published checkpoint in HF_HOME; print how to use them offline."""
    from huggingface_hub import constants

    from distilnb.errors import HubUnreachableError

    # What there is to download is the full profile's: the offline and smoke profiles need nothing from the Hub.
    args.profile = args.profile or os.environ.get(ENV_PREFIX + "PROFILE") or "full"
    for what, name, fetch in downloads(options.build_config(args), args.published):
        if fetch is None:
            print(f"{what} {name}: local, nothing to download")
            continue
        try:
            print(f"{what} {name}: {fetch(name)}")
        except HubUnreachableError:
            raise UsageError(f"Could not fetch the {what} {name!r}: `distilnb download` needs the Hugging Face Hub, so "
                             "run it on a machine with network, with HF_HUB_OFFLINE unset.") from None
    print(f"\nOn this machine, or one given a copy of {constants.HF_HOME}, run the course offline with:\n"
          f"export HF_HOME={constants.HF_HOME}\nexport HF_HUB_OFFLINE=1")
