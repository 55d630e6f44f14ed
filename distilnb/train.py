"""Stage 03: fine-tuning with the Trainer and with a plain PyTorch loop, and saving the model with its card."""

from __future__ import annotations

import json
import math
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from distilnb.config import Config, from_hub
from distilnb.metrics import SUMMARY_METRICS, classification_metrics, trainer_metrics
from distilnb.tokens import batches_of, data_collator, length_grouped_order

MODEL_INPUTS = ("input_ids", "attention_mask", "label")
# Fine-tuning learning rate for a 768-wide encoder (DistilBERT, BERT-base); narrower encoders want proportionally more.
REFERENCE_LEARNING_RATE, REFERENCE_WIDTH = 5e-5, 768


def default_learning_rate(hidden_size: int) -> float:
    """Return the default peak learning rate: 5e-5 at width 768, scaled by 768 / width (MiniLM, 384: 1e-4)."""
    return REFERENCE_LEARNING_RATE * REFERENCE_WIDTH / hidden_size


def device() -> torch.device:
    """Return the device to train on: the GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def mixed_precision() -> dict[str, bool]:
    """Return the Trainer's precision flags: bf16 on GPUs that have it, fp16 on older GPUs (a T4), none on the CPU."""
    if not torch.cuda.is_available():
        return {"bf16": False, "fp16": False}
    bf16 = torch.cuda.is_bf16_supported(including_emulation=False)  # a T4 only emulates bf16: give it fp16
    return {"bf16": bf16, "fp16": not bf16}


def distributed_on_cpu() -> bool:
    """Return True when several processes were launched (torchrun, accelerate launch) on a machine without a GPU."""
    return not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1


def refuse_unsafe_folder(model: str) -> None:
    """Raise a clear error when a local model folder has pickle weights but no safetensors file."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return
    if not list(folder.glob("*.safetensors")):
        pickles = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
        found = f"only pickle files ({', '.join(pickles)})" if pickles else "no weights"
        raise ValueError(
            f"{folder} has {found}: distilnb loads weights only from .safetensors, since a pickle file can run code when "
            "loaded. Convert a checkpoint you trust with model.save_pretrained(folder, safe_serialization=True)."
        )


def check_label_count(model: str, label_names: list[str]) -> None:
    """Raise a clear error when a fine-tuned classifier was trained for a different set of labels than the data has."""
    from transformers import AutoConfig

    config = from_hub(f"the model {model!r}", lambda: AutoConfig.from_pretrained(model))
    trained_for = [config.id2label[i] for i in sorted(config.id2label)]
    is_classifier = any(name.endswith("ForSequenceClassification") for name in (config.architectures or []))
    if is_classifier and len(trained_for) != len(label_names):
        raise ValueError(
            f"{model} is a classifier for {len(trained_for)} labels {trained_for}, but the data has {len(label_names)} "
            f"{label_names}. Fine-tune from its base encoder (for example distilbert-base-uncased) instead."
        )


def load_model(model: str, label_names: list[str]):
    """Return a sequence classifier from a Hub id or folder, its head sized and named for label_names (safetensors only)."""
    from transformers import AutoModelForSequenceClassification

    refuse_unsafe_folder(model)
    check_label_count(model, label_names)
    return from_hub(f"the model {model!r}", lambda: AutoModelForSequenceClassification.from_pretrained(
        model, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)}, use_safetensors=True))


def learning_rate_for(cfg: Config, model) -> float:
    """Return cfg.learning_rate, or the default scaled to the model's width when it is None."""
    return cfg.learning_rate or default_learning_rate(model.config.hidden_size)


def class_weights(labels, n_classes: int) -> torch.Tensor:
    """Return inverse-frequency class weights, scaled so that a balanced dataset gets 1.0 for every class."""
    counts = np.bincount(np.asarray(labels), minlength=n_classes).astype(float)
    return torch.tensor(counts.sum() / (n_classes * np.clip(counts, 1, None)), dtype=torch.float32)


def weighted_loss(weights: torch.Tensor):
    """Return a loss function for the Trainer: cross-entropy with per-class weights."""

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"]
        return torch.nn.functional.cross_entropy(logits, labels, weight=weights.to(logits.device))

    return loss


def training_arguments(cfg: Config, learning_rate: float):
    """Return TrainingArguments with the course's defaults (see 03_finetune for why each is chosen)."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(cfg.paths.checkpoints),
        learning_rate=learning_rate,
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=2 * cfg.batch_size,
        warmup_steps=cfg.warmup,  # a float below 1 is a share of the training steps
        weight_decay=cfg.weight_decay,
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="f1_macro",
        greater_is_better=True,
        train_sampling_strategy="group_by_length",
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=distributed_on_cpu(),  # accelerate runs DistributedDataParallel over gloo on the CPU only when told so
        # One label per text, so DDP's mean of per-process mean losses is already right; True would multiply the loss by
        # the number of processes, since DistilBERT's classification head ignores the token count the Trainer passes it.
        average_tokens_across_devices=False,
        **mixed_precision(),
    )


def model_inputs(tokenized):
    """Return the tokenized splits with only the columns the model takes."""
    return tokenized.select_columns(list(MODEL_INPUTS))


def last_checkpoint(folder: Path) -> str | None:
    """Return the newest checkpoint folder of a run, or None."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def build_trainer(cfg: Config, model, tokenized, tokenizer, callbacks: list | None = None):
    """Return a Trainer over the train and validation splits with the course's defaults and early stopping."""
    from transformers import EarlyStoppingCallback, Trainer

    label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    inputs = model_inputs(tokenized)
    loss = weighted_loss(class_weights(inputs["train"]["label"], len(label_names))) if cfg.class_weights else None
    return Trainer(
        model=model,
        args=training_arguments(cfg, learning_rate_for(cfg, model)),
        train_dataset=inputs["train"],
        eval_dataset=inputs["validation"],
        processing_class=tokenizer,
        data_collator=data_collator(tokenizer),
        compute_metrics=trainer_metrics(label_names),
        compute_loss_func=loss,
        callbacks=[EarlyStoppingCallback(cfg.early_stopping_patience), *(callbacks or [])],
    )


def fine_tune(cfg: Config, model, tokenized, tokenizer, resume: bool = False, callbacks: list | None = None):
    """Return the Trainer after training (best checkpoint reloaded); resume=True continues from the last checkpoint."""
    checkpoint = last_checkpoint(cfg.paths.checkpoints) if resume else None
    if resume and checkpoint is None:
        raise FileNotFoundError(f"Nothing to resume: {cfg.paths.checkpoints} has no checkpoint. Train with resume=False first.")
    if not resume:
        shutil.rmtree(cfg.paths.checkpoints, ignore_errors=True)  # a fresh run must not mix with an older one's checkpoints
    trainer = build_trainer(cfg, model, tokenized, tokenizer, callbacks)
    trainer.train(resume_from_checkpoint=checkpoint)
    return trainer


def history_frame(log_history: list[dict]) -> pd.DataFrame:
    """Return one row per epoch from a Trainer's log history: train_loss, eval_loss and the eval metrics."""
    rows: dict[float, dict] = {}
    for entry in log_history:
        if "epoch" not in entry:
            continue
        row = rows.setdefault(round(entry["epoch"], 4), {"epoch": round(entry["epoch"], 4)})
        if "loss" in entry:
            row["train_loss"] = entry["loss"]
        row.update({key: value for key, value in entry.items() if key.startswith("eval_")})
    frame = pd.DataFrame(sorted(rows.values(), key=lambda row: row["epoch"]))
    timing = ("runtime", "per_second")
    return frame[[c for c in frame.columns if c in ("epoch", "train_loss") or c.startswith("eval_") and not c.endswith(timing)]]


# ---------------------------------------------------------------- the plain PyTorch loop


def no_decay(name: str) -> bool:
    """Return True for parameters that weight decay should not shrink: biases and LayerNorm weights."""
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name


@torch.inference_mode()
def predict_logits(model, dataset, collator, batch_size: int = 64) -> np.ndarray:
    """Return the model's logits for a tokenized dataset, in the dataset's own order."""
    model.eval()
    target = next(model.parameters()).device
    inputs = [{name: dataset[i][name] for name in ("input_ids", "attention_mask")} for i in range(len(dataset))]
    chunks = []
    for start in range(0, len(inputs), batch_size):
        batch = {k: v.to(target) for k, v in collator(inputs[start:start + batch_size]).items()}
        chunks.append(model(**batch).logits.float().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, model.config.num_labels), dtype=np.float32)


def evaluate_logits(logits: np.ndarray, labels, label_names: list[str]) -> dict:
    """Return eval_loss and the summary metrics for logits against labels (the keys the Trainer logs)."""
    labels = np.asarray(labels)
    loss = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    scores = classification_metrics(labels, logits.argmax(axis=-1), label_names)
    return {"eval_loss": loss, **{f"eval_{name}": scores[name] for name in SUMMARY_METRICS}}


def train_loop(cfg: Config, model, tokenized, tokenizer, progress: bool = True) -> pd.DataFrame:
    """Train with a plain PyTorch loop (AdamW, linear warm-up, clipping, autocast on GPU); return the per-epoch history."""
    from transformers import get_linear_schedule_with_warmup

    target = device()
    model.to(target)
    inputs = model_inputs(tokenized)
    train, validation = inputs["train"], inputs["validation"]
    label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    collator = data_collator(tokenizer)
    groups = [{"params": [p for n, p in model.named_parameters() if not no_decay(n)], "weight_decay": cfg.weight_decay},
              {"params": [p for n, p in model.named_parameters() if no_decay(n)], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=learning_rate_for(cfg, model))
    epochs = math.ceil(cfg.epochs)
    steps = epochs * math.ceil(len(train) / cfg.batch_size)
    schedule = get_linear_schedule_with_warmup(optimizer, math.ceil(cfg.warmup * steps) if cfg.warmup < 1 else int(cfg.warmup), steps)
    precision = torch.bfloat16 if mixed_precision()["bf16"] else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=target.type == "cuda" and precision == torch.float16)
    lengths = np.array([len(ids) for ids in train["input_ids"]])
    history, best_score, best_state = [], -1.0, None
    for epoch in range(1, epochs + 1):
        model.train()
        order = length_grouped_order(lengths, cfg.batch_size, seed=cfg.seed + epoch)
        total, batches = 0.0, batches_of(order, cfg.batch_size)
        for rows in tqdm(batches, desc=f"epoch {epoch}/{epochs}", disable=not progress, leave=False):
            batch = {k: v.to(target) for k, v in collator([train[int(i)] for i in rows]).items()}
            with torch.autocast(target.type, dtype=precision, enabled=target.type == "cuda"):
                loss = model(**batch).loss
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.item()
        scores = evaluate_logits(predict_logits(model, validation, collator, 2 * cfg.batch_size), validation["label"], label_names)
        history.append({"epoch": float(epoch), "train_loss": total / len(batches), **scores})
        if scores["eval_f1_macro"] > best_score:
            best_score, best_state = scores["eval_f1_macro"], {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)  # like load_best_model_at_end: keep the epoch with the best validation macro-F1
    return pd.DataFrame(history)


# ---------------------------------------------------------------- saving


def library_versions() -> dict[str, str]:
    """Return the versions of the libraries a result depends on."""
    import datasets
    import sklearn
    import transformers

    import distilnb

    return {"distilnb": distilnb.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "datasets": datasets.__version__, "scikit-learn": sklearn.__version__}


def model_card(cfg: Config, label_names: list[str], split_sizes: dict[str, int], metrics: dict, hyperparameters: dict) -> str:
    """Return a model card (Markdown) naming the data, splits, hyper-parameters, metrics, date and library versions."""
    rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in metrics.items() if isinstance(value, float))
    params = "\n".join(f"| {name} | {value} |" for name, value in hyperparameters.items())
    versions = ", ".join(f"{name} {version}" for name, version in library_versions().items())
    return f"""---
library_name: transformers
pipeline_tag: text-classification
base_model: {cfg.model if cfg.model != "tiny" else "none (tiny random-weight DistilBERT, smoke profile)"}
---

# Text classifier fine-tuned with distilnb

- **Base model:** `{cfg.model}` (profile `{cfg.profile}`)
- **Data:** `{cfg.dataset}` (text column `{cfg.text_column}`, label column `{cfg.label_column}`)
- **Labels ({len(label_names)}):** {", ".join(label_names)}
- **Splits:** {", ".join(f"{split} {n}" for split, n in split_sizes.items())}
- **Trained:** {datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
- **Libraries:** {versions}

## Validation metrics

| metric | value |
|---|---|
{rows}

## Hyper-parameters

| name | value |
|---|---|
{params}

## Use

```python
from distilnb.predict import Predictor
predictor = Predictor.from_folder("path/to/this/folder")
predictor.predict(["some text"])
```

Trained for teaching: check its errors (chapter 04) before trusting it with anything that matters.
"""


def save_model(folder: Path, model, tokenizer, card: str, training_args: dict | None = None) -> Path:
    """Write the model (safetensors, with id2label), its tokenizer, the card and the training arguments; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "README.md").write_text(card)
    if training_args is not None:
        (folder / "training_args.json").write_text(json.dumps(training_args, indent=2, default=str))
    return folder


def hyperparameters(cfg: Config, args) -> dict:
    """Return the hyper-parameters worth reporting, from the config and the Trainer's arguments."""
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    return {"learning_rate": args.learning_rate, "epochs (max)": args.num_train_epochs, "batch_size": args.per_device_train_batch_size,
            "warmup": cfg.warmup, "weight_decay": args.weight_decay, "schedule": str(args.lr_scheduler_type),
            "batches": args.train_sampling_strategy, "max_length": cfg.max_length, "class_weights": cfg.class_weights,
            "precision": precision, "seed": args.seed}


def save_fine_tuned(cfg: Config, trainer, tokenizer, split_sizes: dict[str, int]) -> Path:
    """Save the Trainer's (best) model with card, arguments and validation metrics to the run's model folder; return it."""
    from distilnb.metrics import update_metrics

    scores = {key.removeprefix("eval_"): value for key, value in trainer.evaluate().items() if key.startswith("eval_")}
    if not trainer.is_world_process_zero():  # under torchrun every process evaluates (a collective), one writes
        return cfg.paths.model
    model = trainer.model
    label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    card = model_card(cfg, label_names, split_sizes, scores, hyperparameters(cfg, trainer.args))
    save_model(cfg.paths.model, model, tokenizer, card, trainer.args.to_dict())
    cfg.save(cfg.paths.model / "distilnb_config.json")
    update_metrics(cfg.paths.metrics, "validation", {"fine-tuned (Trainer)": scores})
    return cfg.paths.model


def run_fine_tuning(cfg: Config, resume: bool = False) -> Path:
    """Run stages 01 to 03 headless (splits, tokens, Trainer fine-tuning, saving); return the saved model folder."""
    from accelerate import PartialState

    from distilnb import data, tokens
    from distilnb.config import seed_everything

    seed_everything(cfg.seed)
    # Under torchrun the main process builds and saves the splits and caches first; the others then read them.
    with PartialState(cpu=distributed_on_cpu()).main_process_first():
        splits, report = data.build_and_save_splits(cfg)  # training is where the current split settings apply
        tokenizer = tokens.load_tokenizer(cfg.resolved_model)
        tokenized = tokens.tokenize_splits(splits, tokenizer, cfg.max_length)
    model = load_model(cfg.resolved_model, data.label_names(splits))
    trainer = fine_tune(cfg, model, tokenized, tokenizer, resume=resume)
    return save_fine_tuned(cfg, trainer, tokenizer, report.split_sizes)


def model_for_evaluation(cfg: Config, published: str | None = None) -> str:
    """Return the model to evaluate: this run's saved folder; else, in the full profile, a published checkpoint; else train one now."""
    if (cfg.paths.model / "config.json").is_file():
        return str(cfg.paths.model)
    if published and cfg.profile == "full":
        return published
    return str(run_fine_tuning(cfg))
