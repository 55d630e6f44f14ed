"""Several processes: `torchrun --nproc_per_node=2 -m distilnb train` runs DistributedDataParallel (gloo on the CPU)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from distilnb import data, metrics, runs
from distilnb.predict import Predictor

PROCESSES = 2


@pytest.mark.slow
def test_torchrun_trains_with_two_processes_and_saves_one_model(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILNB_") or k == "DISTILNB_CACHE"}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    # --standalone picks a free port, so runs beside other jobs on a shared machine do not collide on 29500.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={PROCESSES}",
               "-m", "distilnb", "train", "--profile", "smoke", "--epochs", "2", "--output-root", str(tmp_path),
               "--keep-checkpoints"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]

    run = tmp_path / "smoke"
    saved = sorted(p.relative_to(run) for p in run.rglob("model.safetensors") if "checkpoints" not in p.parts)
    assert [str(p) for p in saved] == ["model/model.safetensors"]
    assert done.stdout.count("Model saved to") == 1  # only the main process reports
    scores = json.loads((run / "metrics.json").read_text())["validation"]["fine-tuned"]
    # The scores the two processes gathered are those of the saved model on the whole validation split, once each.
    splits, _ = runs.saved_splits(run / "data")
    alone = metrics.evaluate_split(Predictor.from_folder(run / "model", on="cpu"), splits, "validation").scores
    assert scores["accuracy"] == pytest.approx(alone["accuracy"])
    assert scores["f1_macro"] == pytest.approx(alone["f1_macro"])
    classes = len(data.label_names(splits))
    assert scores["loss"] < 1.5 * math.log(classes)  # not multiplied by the number of processes (ln k: chance on k)

    # Each process sees its half of the training set, so an epoch takes half the steps of one process.
    train_rows = json.loads((run / "data" / "load_report.json").read_text())["split_sizes"]["train"]
    steps_per_epoch = math.ceil(math.ceil(train_rows / PROCESSES) / 16)
    state = json.loads((run / "checkpoints" / f"checkpoint-{2 * steps_per_epoch}" / "trainer_state.json").read_text())
    assert state["global_step"] == 2 * steps_per_epoch
