"""Fine-tune a transformer encoder on a CSV of labelled texts and print a test report: the course in one script.

Uses only transformers, datasets, torch and scikit-learn. Example:
    python examples/finetune.py data/support_tickets.csv --model distilbert-base-uncased --epochs 3
"""

import argparse

import numpy as np
import torch
from datasets import load_dataset
from sklearn.metrics import classification_report, f1_score
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("csv", help="a CSV file with a header line")
parser.add_argument("--model", default="distilbert-base-uncased", help="Hub id or local folder of the encoder")
parser.add_argument("--text-column", default="text")
parser.add_argument("--label-column", default="label")
parser.add_argument("--epochs", type=float, default=3.0)
parser.add_argument("--max-length", type=int, default=128)
parser.add_argument("--batch-size", type=int, default=16)
parser.add_argument("--learning-rate", type=float, default=5e-5)
parser.add_argument("--output-dir", default="finetuned-model")
parser.add_argument("--seed", type=int, default=42)
args = parser.parse_args()
set_seed(args.seed)

# 1. Data: read the CSV, turn the label strings into a ClassLabel, cut 80/10/10 splits stratified by class.
raw = load_dataset("csv", data_files=args.csv)["train"]
raw = raw.rename_columns({args.text_column: "text", args.label_column: "label"}).select_columns(["text", "label"])
raw = raw.filter(lambda row: row["text"] is not None and row["label"] is not None).class_encode_column("label")
label_names = raw.features["label"].names
first = raw.train_test_split(test_size=0.2, stratify_by_column="label", seed=args.seed)
second = first["test"].train_test_split(test_size=0.5, stratify_by_column="label", seed=args.seed)
train, validation, test = first["train"], second["train"], second["test"]

# 2. Tokens: no padding here; the collator pads each batch to its longest text.
tokenizer = AutoTokenizer.from_pretrained(args.model)


def tokenize(batch):
    return tokenizer(batch["text"], truncation=True, max_length=args.max_length)


train, validation, test = (split.map(tokenize, batched=True) for split in (train, validation, test))

# 3. Model: the pretrained encoder with a new classification head, one output per label.
model = AutoModelForSequenceClassification.from_pretrained(
    args.model, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
    label2id={name: i for i, name in enumerate(label_names)}, use_safetensors=True)


def compute_metrics(prediction):
    predicted = prediction.predictions.argmax(-1)
    return {"accuracy": float((predicted == prediction.label_ids).mean()),
            "f1_macro": f1_score(prediction.label_ids, predicted, average="macro")}


training_args = TrainingArguments(
    output_dir=f"{args.output_dir}/checkpoints", num_train_epochs=args.epochs, learning_rate=args.learning_rate,
    per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=2 * args.batch_size, warmup_steps=0.1,
    weight_decay=0.01, eval_strategy="epoch", save_strategy="epoch", save_total_limit=1, load_best_model_at_end=True,
    metric_for_best_model="f1_macro", logging_strategy="epoch", report_to="none", seed=args.seed,
    dataloader_pin_memory=torch.cuda.is_available())
trainer = Trainer(model=model, args=training_args, train_dataset=train, eval_dataset=validation,
                  processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
                  compute_metrics=compute_metrics)
trainer.train()
trainer.save_model(args.output_dir)  # weights (safetensors), config with id2label, tokenizer

# 4. Test report: pair predictions with prediction.label_ids, which come back in the same order as the predictions.
prediction = trainer.predict(test)
print(classification_report(prediction.label_ids, prediction.predictions.argmax(-1),
                            labels=np.arange(len(label_names)), target_names=label_names, digits=3, zero_division=0))
print(f"model saved to {args.output_dir}")
