"""The offline classroom: a Hugging Face cache filled on a machine with network lets the full profile run without one.

The tests build that cache themselves, in the layouts the libraries read offline: the hub cache
(hub/models--<id>/refs/main + snapshots/<commit>/, files as symlinks to blobs/) holding the smoke profile's tiny model
under the name distilbert-base-uncased, and the datasets cache (datasets/dair-ai___emotion/<config>/<version>/<hash>/
with Arrow files and dataset_info.json) for dair-ai/emotion. With HF_HUB_OFFLINE=1, datasets 5 never opens the hub
cache for a dataset: load_dataset falls back at once to that datasets cache, which is what `load_dataset` fills online.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from distilnb import Config, cli

MODEL_ID, DATASET_ID = "distilbert-base-uncased", "dair-ai/emotion"
EMOTIONS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
SPLIT_ROWS = {"train": 8, "validation": 2, "test": 2}  # per class
CACHE_VARIABLES = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE", "TRANSFORMERS_CACHE")


def offline_env(hf_home: Path) -> dict[str, str]:
    """Return an environment that reads only the given HF_HOME, offline, with no DISTILNB_* overrides of the caller."""
    env = {k: v for k, v in os.environ.items()
           if (not k.startswith("DISTILNB_") or k == "DISTILNB_CACHE") and k not in CACHE_VARIABLES}
    return {**env, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def run_python(code: str, hf_home: Path) -> subprocess.CompletedProcess:
    """Return the finished `python -c code` process in a fresh interpreter (the libraries read HF_HOME on import)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=offline_env(hf_home),
                          timeout=300)


def run_cli(hf_home: Path, *args: str) -> subprocess.CompletedProcess:
    """Return the finished `python -m distilnb ...` process, reading only the given HF_HOME, offline."""
    return subprocess.run([sys.executable, "-m", "distilnb", *args], capture_output=True, text=True,
                          env=offline_env(hf_home), timeout=300)


def write_hub_model(hf_home: Path, repo_id: str, source: Path) -> Path:
    """Write a model folder into the hub cache layout of `repo_id`; return its snapshot folder."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in sorted(p for p in source.iterdir() if p.is_file()):
        content = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(content).hexdigest()
        blob.write_bytes(content)
        (snapshot / file.name).symlink_to(Path("..", "..", "blobs", blob.name))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def emotion_frames() -> dict[str, pd.DataFrame]:
    """Return a few rows per class and split, shaped like dair-ai/emotion (text, label id)."""
    return {split: pd.DataFrame({"text": [f"i feel {name} about {split} day {i}"
                                          for name in EMOTIONS for i in range(rows)],
                                 "label": [label for label in range(len(EMOTIONS)) for _ in range(rows)]})
            for split, rows in SPLIT_ROWS.items()}


def write_datasets_cache(hf_home: Path, frames: dict[str, pd.DataFrame], scratch: Path) -> Path:
    """Write frames into the datasets cache as load_dataset('dair-ai/emotion') leaves it online; return its folder."""
    import datasets
    from datasets.packaged_modules.parquet.parquet import Parquet

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=EMOTIONS)})
    files = {}
    for split, frame in frames.items():
        files[split] = str(scratch / f"{split}-00000-of-00001.parquet")
        datasets.Dataset.from_pandas(frame, features=features, preserve_index=False).to_parquet(files[split])
    cache = hf_home / "datasets"
    # The Hub's emotion repository is parquet files with a "split" config; the builder writes the same layout, but
    # without a namespace unless its files come from the Hub, so the folder is renamed to the one the Hub load makes.
    builder = Parquet(cache_dir=str(cache), dataset_name="emotion", config_name="split", config_id="split",
                      hash=hashlib.sha1(b"emotion").hexdigest(), data_files=files)
    builder.download_and_prepare()
    target = cache / DATASET_ID.replace("/", "___")
    (cache / "emotion").rename(target)
    return target


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory) -> Path:
    """An HF_HOME with what `distilnb download` caches, tiny stand-ins: model and dataset, no published checkpoint."""
    home = tmp_path_factory.mktemp("hf-home")
    write_hub_model(home, MODEL_ID, Path(Config.from_env(profile="smoke", environ={}).resolved_model))
    write_datasets_cache(home, emotion_frames(), tmp_path_factory.mktemp("emotion-files"))
    return home


def test_model_and_tokenizer_load_offline_from_the_hub_cache(hf_home):
    done = run_python(
        "import json\nfrom distilnb import models\n"
        f"tokenizer = models.load_tokenizer({MODEL_ID!r})\n"
        f"model = models.load_classifier({MODEL_ID!r}, ['a', 'b', 'c'])\n"
        "print(json.dumps({'ids': tokenizer('hello world')['input_ids'], 'width': model.config.dim, "
        "'labels': model.config.num_labels}))", hf_home)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    # Width 64 is the tiny model's: it came from this cache, not from a download.
    assert loaded == {"ids": [101, 7592, 2088, 102], "width": 64, "labels": 3}


def test_dataset_loads_offline_from_the_datasets_cache(hf_home):
    done = run_python(
        "import json\nfrom distilnb import readers\n"
        f"frames = readers.read_source({DATASET_ID!r})\n"
        "print(json.dumps({split: [len(f), sorted(set(f['label'])), f.attrs['class_names']['label']]\n"
        "                  for split, f in frames.items()}))",
        hf_home)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert loaded == {split: [rows * 6, sorted(EMOTIONS), EMOTIONS] for split, rows in SPLIT_ROWS.items()}


def test_the_full_profile_trains_and_predicts_offline_from_the_cache(hf_home, tmp_path):
    run = ["--profile", "full", "--output-root", str(tmp_path)]
    trained = run_cli(hf_home, "train", *run, "--epochs", "1", "--batch-size", "8")
    assert trained.returncode == 0, trained.stderr[-3000:]
    config = json.loads((tmp_path / "full" / "model" / "config.json").read_text())
    assert list(config["id2label"].values()) == EMOTIONS and config["dim"] == 64
    predicted = run_cli(hf_home, "predict", *run, "i am so happy today")
    assert predicted.returncode == 0 and json.loads(predicted.stdout)["label"] in EMOTIONS


def test_download_over_a_complete_cache_reports_it_and_the_exports(hf_home):
    done = run_cli(hf_home, "download", "--no-published")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"model {MODEL_ID}: {hf_home / 'hub'}" in done.stdout and f"dataset {DATASET_ID}:" in done.stdout
    assert f"export HF_HOME={hf_home}\nexport HF_HUB_OFFLINE=1" in done.stdout


def test_download_without_network_is_one_sentence(hf_home):
    done = run_cli(hf_home, "download")  # the published checkpoint is not in this cache
    assert done.returncode == 1 and "Traceback" not in done.stderr  # above the sentence: the libraries' cache notices
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"distilnb download: Could not fetch the published checkpoint {cli.download.PUBLISHED_MODEL!r}: "
        "`distilnb download` needs the Hugging Face Hub")


def test_an_empty_cache_offline_fails_with_one_plain_sentence(tmp_path):
    done = run_python(
        "from distilnb import HubUnreachableError, models, readers\n"
        f"for load in (lambda: models.load_tokenizer({MODEL_ID!r}),\n"
        f"             lambda: models.load_classifier({MODEL_ID!r}, ['a', 'b']),\n"
        f"             lambda: readers.read_source({DATASET_ID!r})):\n"
        "    try:\n        load()\n        print('loaded')\n"
        "    except HubUnreachableError as error:\n        print(error)", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    messages = done.stdout.strip().splitlines()
    assert [m.split(" from the Hugging Face Hub")[0] for m in messages] == [
        f"Could not download the tokenizer of {MODEL_ID!r}", f"Could not download the model {MODEL_ID!r}",
        f"Could not download the dataset {DATASET_ID!r}"]
    assert all("python -m distilnb download" in m and "DISTILNB_PROFILE=offline" in m for m in messages)


def test_the_full_profile_offline_without_a_cache_stops_with_one_sentence(tmp_path):
    done = run_cli(tmp_path / "empty-hf-home", "train", "--profile", "full", "--output-root", str(tmp_path))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"distilnb train: Could not download the dataset {DATASET_ID!r}")
