"""Notebooks read like chapters, write the library calls a learner must learn, and are committed clean.

nbval executes the chapters (`make test`); notebooks/conftest.py fails a cell whose figure would print as text.
"""

import ast
import json
import re
from dataclasses import replace

import pytest
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
EXPECTED = ["01_data", "02_tokenize", "03_finetune", "04_evaluate", "05_inference", "06_labels_and_pairs",
            "07_choosing_settings", "08_smaller_faster"]
MAX_LINES = 22  # about 20 lines a cell: the plain loop of 03 is read as one piece

# The library calls each chapter teaches, written out in its code cells.
LIBRARY_CALLS = {
    "01_data": [
        r'load_dataset\("dair-ai/emotion"\)',
        r'load_dataset\("csv", data_files=',
        r"class_encode_column\(",
        r"ClassLabel",
        r"train_test_split\(.*stratify_by_column=",
        r"train_test_split\(rows, test_size=.*stratify=labels",
        r"train_test_split\(rest, test_size=.*stratify=labels\[rest\]",
        r"data\.prepare_splits\(",
        r"\.save_to_disk\(",
        r"load_from_disk\(",
    ],
    "02_tokenize": [
        r"AutoTokenizer\.from_pretrained\(",
        r"def tokenize\(batch\)",
        r"\.map\(tokenize, batched=True\)",
        r"DataCollatorWithPadding\(tokenizer\)",
        r"DataLoader\(.*batch_sampler=",
    ],
    "03_finetune": [
        r"AutoModelForSequenceClassification\.from_pretrained\(",
        r"num_labels=",
        r"id2label=id2label",
        r"label2id=label2id",
        r"use_safetensors=True",
        r"TrainingArguments\(",
        r"compute_metrics",
        r"Trainer\(",
        r"trainer\.train\(",
        r"trainer\.save_model\(",
        r"DummyClassifier\(strategy=\"most_frequent\"\)",
        r"Pipeline\(\[\(\"tfidf\", TfidfVectorizer\(",
        r"LogisticRegression\(",
        r"AutoModel\.from_pretrained\(",
        r"\.last_hidden_state",
        r"TSNE\(",
        r"evaluate\.load\(",
        r"def compute_metrics\(eval_prediction\)",
        r"DataLoader\(.*batch_sampler=.*collate_fn=collator",
        r"named_parameters\(\)",
        r"torch\.optim\.AdamW\(groups",
        r"loop_model\.train\(\)",
        r"model\.eval\(\)",
        r"with torch\.no_grad\(\):",
        r"logging\.set_verbosity_error\(\)",
        r"get_linear_schedule_with_warmup\(",
        r"loss\.backward\(\)",
        r"clip_grad_norm_\(",
        r"optimizer\.step\(\)",
        r"scheduler\.step\(\)",
        r"CrossEntropyLoss\(weight=",
    ],
    "04_evaluate": [
        r"trainer\.predict\(",
        r"accuracy_score\(splits\[\"test\"\]\[\"label\"\]",
        r"output\.label_ids",
        r"classification_report\(",
        r"ConfusionMatrixDisplay",
        r"evaluate\.load\(",
        r"cross_entropy\(.*reduction=\"none\"\)",
        r"sort_values\(\"loss\", ascending=False\)",
        r"sort_values\(\"loss\"\)",
        r"logits\[rows\] = ",
        r"np\.digitize\(",
        r"cross_entropy\(validation_logits / t",
    ],
    "05_inference": [
        r'pipeline\("text-classification", model=.*model_kwargs=\{"use_safetensors": True\}',
        r"predict\.Predictor\.from_folder\(",
        r"time\.perf_counter\(\)",
        r"explain\.word_attributions\(",
        r"demo\.build_app\(",
        r"if LAUNCH_DEMO:",
        r"return_overflowing_tokens=True",
        r"stride=stride",
        r"for _ in range\(5\):",
        r"np\.median\(",
    ],
    "06_labels_and_pairs": [
        r"AutoTokenizer\.from_pretrained\(",
        r"def tokenize\(batch\)",
        r"\.map\(tokenize, batched=True\)",
        r"AutoModelForSequenceClassification\.from_pretrained\(.*problem_type=\"multi_label_classification\"",
        r"BCEWithLogitsLoss\(\)",
        r"OneVsRestClassifier\(LogisticRegression\(",
        r"TrainingArguments\(",
        r"Trainer\(",
        r"trainer\.train\(",
        r"trainer\.predict\(",
        r"\.save_model\(",
        r'pipeline\("text-classification", model=.*top_k=None',
        r"def tokenize_pair\(batch\)",
        r"\.map\(tokenize_pair, batched=True\)",
        r"token_type_ids",
        r"train_test_split\(.*stratify=",
    ],
    "07_choosing_settings": [
        r"train_test_split\(.*stratify_by_column=\"label\"",
        r"evaluate\.load\(metrics\.evaluation_module\(\"f1\"\)\)",
        r"TrainingArguments\(",
        r"disable_tqdm=True",
        r"Trainer\(model_init=model_init",
        r"log=True",
        r"\.hyperparameter_search\(.*hp_space=hp_space.*compute_objective=compute_objective.*n_trials=.*"
        r"direction=\"maximize\".*pruner=",
        r"trials_dataframe\(",
        r"metric_key_prefix=\"test\"",
        r"set_verbosity_error\(\)",
    ],
    "08_smaller_faster": [
        r"AutoModelForSequenceClassification\.from_pretrained\(teacher_dir, use_safetensors=True\)",
        r"num_hidden_layers = keep",
        r"AutoModelForSequenceClassification\.from_config\(",
        r"\.load_state_dict\(weights\)",
        r"with torch\.no_grad\(\):",
        r"\.add_column\(\"teacher_logits\"",
        r"class DistillationTrainer\(Trainer\)",
        r"def compute_loss\(self, model, inputs",
        r"inputs\.pop\(\"teacher_logits\"",
        r"F\.kl_div\(F\.log_softmax\(outputs\.logits / t.*F\.softmax\(teacher_logits / t.*reduction=\"batchmean\"\)",
        r"self\.alpha \* outputs\.loss \+ \(1 - self\.alpha\) \* t\*\*2 \* soft",
        r"TrainingArguments\(",
        r"remove_unused_columns=False",
        r"trainer\.train\(\)",
        r"quantize_dynamic\(",
        r"hardware\.cpu_summary\(\)",
        r"time\.perf_counter\(\)",
        r"np\.median\(",
        r"metrics\.evaluate_split\(",
        r"plt\.show\(\)",
    ],
}
# Functions a chapter defines because defining them is the lesson (or the evaluation step of the written-out loop).
ALLOWED_DEFS = {"02_tokenize": {"tokenize"}, "03_finetune": {"tokenize", "embed", "compute_metrics", "validation_f1"},
                "04_evaluate": {"calibration_bins"},
                "06_labels_and_pairs": {"tokenize", "tokenize_pair", "new_model", "weighted_loss", "compute_metrics"},
                "07_choosing_settings": {"tokenize", "model_init", "compute_metrics", "hp_space", "compute_objective"},
                "08_smaller_faster": {"tokenize", "__init__", "compute_loss"}}
# What a learner need not read: set-up and bookkeeping that the package or the tests do instead.
APPARATUS = ["use_cpu", "average_tokens_across_devices", "checkpoint_every", "rmtree", "update_metrics",
             "args.to_dict()", "subprocess", "os.environ"]


def cells(path):
    return json.loads(path.read_text())["cells"]


def python_of(source: str) -> str:
    """Return a cell's source as Python: IPython's `%magic` and `!shell` lines become calls, as the kernel runs them."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def code_of(path) -> str:
    return "\n".join(python_of("".join(c["source"])) for c in cells(path) if c["cell_type"] == "code")


def test_the_course_has_its_chapters_in_order():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    dirty = [
        i for i, c in enumerate(cells(path)) if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])
    ]
    assert dirty == [], f"{path.name}: cells {dirty} carry outputs; clear them before committing"
    ids = [c.get("id") for c in cells(path)]  # nbformat 4.5 wants one per cell; a hand-added cell can lack it
    assert None not in ids and len(set(ids)) == len(ids), f"{path.name}: a cell without an id, or two with one id"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_shape(path):
    nb = cells(path)
    assert nb[0]["cell_type"] == "markdown" and "".join(nb[0]["source"]).startswith("# ")
    tagged = [c for c in nb if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and re.search(r"^PROFILE = None\b", "".join(tagged[0]["source"]), flags=re.MULTILINE)
    last = "".join(nb[-1]["source"])
    exercises = re.findall(r"^\d\. ", last.split("## Exercises")[-1], flags=re.MULTILINE)
    assert "## Summary" in last and "## Exercises" in last and 3 <= len(exercises) <= 5
    code = [c for c in nb if c["cell_type"] == "code"]
    steps = [c for c in code[1:] if c not in tagged]  # the setup and parameters cells are set-up, not steps
    longest = max(len("".join(c["source"]).splitlines()) for c in steps)
    assert longest <= MAX_LINES, f"{path.name}: a cell of {longest} lines; split it where the prose can say why"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_functions_are_defined_only_where_the_chapter_teaches_them(path):
    source = code_of(path)
    defined = {node.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)}
    assert defined == ALLOWED_DEFS.get(path.stem, set())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_library_calls_of_the_chapter_are_written_in_its_cells(path):
    source = code_of(path)
    missing = [call for call in LIBRARY_CALLS[path.stem] if not re.search(call, source, flags=re.DOTALL)]
    assert missing == [], f"{path.name} no longer writes out {missing}"


def test_every_code_cell_but_runs_follows_an_explanation():
    for path in NOTEBOOKS:
        runs = 0
        for cell in cells(path):
            runs = runs + 1 if cell["cell_type"] == "code" else 0
            assert runs <= 2, f"{path.name}: more than two code cells in a row without a word of explanation"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_chapter_names_the_model_it_runs(path):
    source = code_of(path)
    assert re.search(r"print\(f\"profile \{cfg\.profile!r\}.*\{cfg\.model!r\}", source), (
        "print the profile and cfg.model"
    )


def test_no_sentence_hard_codes_a_number_the_run_prints():
    """Shares and scores of a run are printed from the data, never written into the prose (reference boxes excepted)."""
    for path in NOTEBOOKS:
        for cell in cells(path):
            text = "".join(cell["source"])
            if cell["cell_type"] != "markdown" or "Reference results" in text:
                continue
            assert not re.search(r"\b\d+(\.\d+)? ?%", text.replace("90 %", "")), (
                f"{path.name}: a percentage in prose: {text[:80]}"
            )
            # Scores, speed ratios and seconds come from the run's cells; the header's time is the guide's (tested).
            header = re.sub(r"\*Offline profile on an idle 2-core CPU[^*]*\*", "", text)
            assert not re.search(r"\b0\.\d{2,}\b|\d+(\.\d+)? ?×|\b\d+(\.\d+)? s\b", header), (
                f"{path.name}: a run's number in prose: {text[:80]}"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_time_each_header_promises_is_the_time_the_guide_measured(path):
    header = "".join(cells(path)[0]["source"])
    promised = re.search(r"\*Offline profile on an idle 2-core CPU: about ([^*;]+?) of cell time; "
                         r"a busy machine is slower[^*]*\*", header)
    assert promised, f"{path.name}: the header states no measured idle time, or not that a busy machine is slower"
    guide = (ROOT / "docs" / "teaching.md").read_text()
    rows = re.findall(rf"^\| {path.stem[:2]} \S+ \| about [^|]+\|.*$", guide, flags=re.MULTILINE)
    time = promised.group(1)
    assert rows and f"| about {time} |" in rows[0], f"{path.name}: {time!r} is not the guide's time"


def test_the_figure_check_under_nbval_fails_a_figure_printed_as_text_and_passes_an_image():
    import importlib.util

    spec = importlib.util.spec_from_file_location("notebook_checks", ROOT / "notebooks" / "conftest.py")
    checks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checks)
    as_text = [{"output_type": "execute_result", "data": {"text/plain": "<Figure size 640x480 with 1 Axes>"}}]
    as_image = [{"output_type": "execute_result", "data": {"image/png": "iVBOR", "text/plain": "<Figure size 1x1>"}}]
    assert "printed as" in checks.figure_problem("figure", as_text)
    assert "no image" in checks.figure_problem("plots.class_balance(counts)", [])
    assert checks.figure_problem("plots.class_balance(counts)", as_image) is None
    assert checks.figure_problem("print(1)", [{"output_type": "stream", "text": "1"}]) is None


def code_cell(stem: str, starts: str) -> str:
    """Return the Python of the code cell of a chapter that starts with `starts`."""
    found = [python_of("".join(c["source"])) for c in cells(ROOT / "notebooks" / f"{stem}.ipynb")
             if c["cell_type"] == "code" and "".join(c["source"]).startswith(starts)]
    assert len(found) == 1, f"{stem}: {len(found)} cells start with {starts!r}"
    return found[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_apparatus_in_the_teaching_cells(path):
    source = code_of(path)
    assert [word for word in APPARATUS if word in source] == []


# The notebook evaluates every half epoch for its curves; the command line, unwatched, once per epoch. use_cpu and
# average_tokens_across_devices matter only under torchrun, which notebooks never run under.
NOT_THE_RECIPE = {"eval_strategy", "eval_steps", "save_strategy", "save_steps", "logging_strategy", "logging_steps",
                  "use_cpu", "average_tokens_across_devices"}


def test_the_notebooks_training_arguments_are_the_command_lines(tmp_path):
    import math

    import torch
    from transformers import TrainingArguments

    from distilnb import Config, models, train

    # The epochs run.decide_epochs gives the sample (its rarest class is on 149 training rows).
    cfg = replace(Config.from_env(profile="offline", environ={}, output_root=str(tmp_path)), epochs=2.0)
    namespace = {"math": math, "torch": torch, "models": models, "TrainingArguments": TrainingArguments, "cfg": cfg,
                 "learning_rate": 1e-4, "features": {"train": range(1497)}}
    exec(code_cell("03_finetune", "steps_per_epoch = "), namespace)
    notebook = namespace["args"].to_dict()
    command_line = train.training_arguments(cfg, 1e-4).to_dict()
    differing = {key for key in notebook.keys() | command_line.keys() if notebook.get(key) != command_line.get(key)}
    assert differing <= NOT_THE_RECIPE, differing - NOT_THE_RECIPE
    assert notebook["eval_steps"] == notebook["save_steps"] == 94 // 2  # every half epoch: at each epoch's end


def test_the_notebooks_compute_metrics_with_evaluate_offline_gives_the_packages_scores():
    import evaluate
    import numpy as np
    from transformers import EvalPrediction

    from distilnb import metrics

    namespace = {"evaluate": evaluate, "metrics": metrics}
    exec(code_cell("03_finetune", "import evaluate"), namespace)
    rng = np.random.default_rng(0)
    prediction = EvalPrediction(predictions=rng.normal(size=(60, 4)), label_ids=rng.integers(0, 4, size=60))
    ours = namespace["compute_metrics"](prediction)
    theirs = metrics.trainer_metrics(["a", "b", "c", "d"])(prediction)
    assert ours.keys() == theirs.keys() and all(np.isclose(ours[k], theirs[k]) for k in ours)


def test_the_baselines_written_in_03_are_the_ones_the_package_scores_in_04():
    from sklearn.dummy import DummyClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from distilnb import baselines

    class Fitted(Exception):
        pass

    class Stop(Pipeline):
        def fit(self, *args, **kwargs):
            raise Fitted(self)

    namespace = {"Pipeline": Stop, "TfidfVectorizer": TfidfVectorizer, "LogisticRegression": LogisticRegression,
                 "DummyClassifier": DummyClassifier, "cfg": type("Cfg", (), {"seed": 7}), "train_texts": [],
                 "train_labels": []}
    with pytest.raises(Fitted) as built:
        exec(code_cell("03_finetune", "tfidf = Pipeline("), namespace)
    assert repr(built.value.args[0].steps) == repr(baselines.tfidf_model(7).steps)
    frozen = code_cell("03_finetune", "frozen_model = LogisticRegression(")
    made = eval(frozen.splitlines()[0].split(" = ", 1)[1], {"LogisticRegression": LogisticRegression, **namespace})
    assert repr(made) == repr(baselines.frozen_classifier(7))


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_the_frozen_features_written_in_03_are_the_packages(pooling, smoke_cfg, sample_splits, monkeypatch):
    import numpy as np
    import torch
    from datasets import DatasetDict
    from transformers import AutoModel

    from distilnb import baselines, models

    monkeypatch.setattr(baselines, "pooling_of", lambda model: pooling)
    texts = sample_splits["validation"].select(range(12))
    namespace = {"baselines": baselines, "models": models, "AutoModel": AutoModel, "torch": torch, "np": np,
                 "cfg": smoke_cfg,
                 "tokenizer": models.load_tokenizer(smoke_cfg.resolved_model),
                 "splits": DatasetDict(train=texts, validation=texts)}
    exec(code_cell("03_finetune", "pooling = baselines.pooling_of("), namespace)
    ours = np.asarray(namespace["frozen"]["validation"]["features"])
    theirs = baselines.frozen_features(smoke_cfg.resolved_model, texts["text"], smoke_cfg.max_length, batch_size=5)
    assert np.allclose(ours, theirs, atol=1e-5)


def call_at(code: str, start: int) -> str:
    """Return the call that starts at `start`, up to its closing parenthesis (nested ones included)."""
    depth = 0
    for end in range(code.index("(", start), len(code)):
        depth += {"(": 1, ")": -1}.get(code[end], 0)
        if depth == 0:
            return code[start:end + 1]
    return code[start:]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_weight_loading_call_asks_for_safetensors(path):
    code = "\n".join("".join(cell["source"]) for cell in cells(path) if cell["cell_type"] == "code")
    calls = [call_at(code, match.start()) for match in re.finditer(r"\w+\.from_pretrained\(|\bpipeline\(", code)]
    loading = [call for call in calls if not call.startswith(("AutoTokenizer", "AutoConfig"))]
    unsafe = [call for call in loading if "use_safetensors" not in call]
    assert unsafe == [], f"{path.stem} loads weights that may be a pickle: {unsafe}"
    assert loading or path.stem < "03", f"{path.stem}: no weight-loading call found (chapters from 03 load models)"
