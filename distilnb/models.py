"""Device and precision, safe loading of models and tokenizers, label checks, and the one batched forward pass."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from distilnb.config import MAX_LENGTH_RANGE, resolve_path
from distilnb.errors import ModelError, NotFoundError, SettingError, from_hub
from distilnb.folder import CONFIG_FILE
from distilnb.serving import CPU_BATCH_TOKENS, batched_rows

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase
    from transformers.utils import ModelOutput

    from distilnb.config import Config

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "spiece.model", "vocab.json")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
LOCAL_MODELS = ("tiny", "minilm")  # the profiles' short names, resolved by Config.resolved_model
GENERIC_LABEL = re.compile(r"LABEL_\d+")
FINE_TUNING_RECORDS = (CONFIG_FILE, "training_args.json")


def device() -> torch.device:
    """Return the device to compute on: the GPU when there is one, else the CPU."""
    import torch  # here, not above: naming, checking and labelling a model (this module's rest) needs no torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def mixed_precision() -> dict[str, bool]:
    """Return the Trainer's precision flags: bf16 on GPUs that have it, fp16 on older GPUs (a T4), none on the CPU."""
    import torch

    if not torch.cuda.is_available():
        return {"bf16": False, "fp16": False}
    bf16 = torch.cuda.is_bf16_supported(including_emulation=False)  # a T4 only emulates bf16: give it fp16
    return {"bf16": bf16, "fp16": not bf16}


def distributed_on_cpu() -> bool:
    """Return True when several processes were launched (torchrun, accelerate launch) on a machine without a GPU."""
    import torch

    return not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1


def set_threads(threads: int) -> None:
    """Make torch and ONNX Runtime compute on `threads` CPU threads; the one place distilnb sets them (the caller
    decides how many).

    Left uncalled, torch keeps its own default (OMP_NUM_THREADS when set, else one thread per core), so the same
    command runs the same way however busy the machine is when it starts.
    """
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)
    else:  # torch reads it when first imported; serving.cpu_threads gives it to ONNX Runtime, which needs no torch
        os.environ["OMP_NUM_THREADS"] = str(threads)


def is_main_process() -> bool:
    """Return True in the process that writes and prints: the only one, or rank 0 under torchrun or accelerate."""
    from accelerate import PartialState

    return PartialState(cpu=distributed_on_cpu()).is_main_process


def refuse_unsafe_folder(model: str | Path) -> None:
    """Raise ModelError when a local model folder has pickle weights but no safetensors file."""
    folder = Path(model).expanduser()
    if not folder.is_dir() or list(folder.glob("*.safetensors")):
        return
    pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
    found = f"only pickle files ({', '.join(pickles)})" if pickles else "no weights"
    raise ModelError(
        f"{folder} has {found}: distilnb loads weights only from .safetensors, since a pickle file can run code when "
        "loaded. Convert a checkpoint you trust with model.save_pretrained(folder, safe_serialization=True)."
    )


def load_tokenizer(model: str | Path) -> PreTrainedTokenizerBase:
    """Return the tokenizer of a Hub model id or a local model folder, with a clear error when the folder has none."""
    from transformers import AutoTokenizer

    # A fast tokenizer warns after every fork (DataLoader workers, Jupyter); the course never shares one across forks.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    folder = Path(model).expanduser()
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise NotFoundError(
            f"{folder} holds no tokenizer (none of {', '.join(TOKENIZER_FILES)}). Save it beside the model with "
            "tokenizer.save_pretrained(folder), or load the tokenizer of the model it was trained from."
        )
    return from_hub(f"the tokenizer of {str(model)!r}", lambda: AutoTokenizer.from_pretrained(str(model)))


def label_names_of(model_or_config: PreTrainedModel | PretrainedConfig) -> list[str]:
    """Return the class names of a model (or its config) in label-id order."""
    config = getattr(model_or_config, "config", model_or_config)
    return [config.id2label[i] for i in range(config.num_labels)]


def is_multi_label(model_or_config: PreTrainedModel | PretrainedConfig) -> bool:
    """Return True for a classifier of several labels a text (problem_type multi_label_classification)."""
    config = getattr(model_or_config, "config", model_or_config)
    return getattr(config, "problem_type", None) == MULTI_LABEL_PROBLEM


def is_fine_tuned_classifier(config: PretrainedConfig) -> bool:
    """Return True for a sequence classifier whose labels have names (not an untrained head's LABEL_0, LABEL_1...)."""
    classifier = any(name.endswith("ForSequenceClassification") for name in (config.architectures or []))
    generic = label_names_of(config) == [f"LABEL_{i}" for i in range(config.num_labels)]
    return classifier and not generic


def check_labels(model: str, config: PretrainedConfig, label_names: list[str]) -> None:
    """Raise ModelError when a fine-tuned classifier's labels differ from the data's in name or in order."""
    trained_for = label_names_of(config)
    if not is_fine_tuned_classifier(config) or trained_for == list(label_names):
        return
    if sorted(trained_for) == sorted(label_names):
        problem = (f"the same {len(trained_for)} labels in another order ({trained_for} against the data's "
                   f"{label_names})")
    else:
        problem = f"labels {trained_for}, but the data has {list(label_names)}"
    raise ModelError(f"{model} is a classifier trained for {problem}: its head would relabel every prediction. "
                     "Fine-tune from its base encoder (for example distilbert-base-uncased) instead.")


MULTI_LABEL_PROBLEM = "multi_label_classification"  # transformers' name: sigmoid per label, BCEWithLogitsLoss


def load_classifier(model: str | Path, label_names: list[str] | None = None, *,
                    multi_label: bool = False) -> PreTrainedModel:
    """Return a sequence classifier (safetensors only); with label_names, its head sized and named for them;
    multi_label: the head trained with BCEWithLogitsLoss on multi-hot float labels (saved in its config.json)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    model = str(model)
    refuse_unsafe_folder(model)
    options: dict = {"use_safetensors": True}
    if label_names is not None:
        config = from_hub(f"the model {model!r}", lambda: AutoConfig.from_pretrained(model))
        check_labels(model, config, label_names)
        # check_labels refused a trained head for other labels; an untrained one of another size is replaced.
        options.update(num_labels=len(label_names), id2label=dict(enumerate(label_names)),
                       label2id={name: i for i, name in enumerate(label_names)}, ignore_mismatched_sizes=True)
        if multi_label:
            options["problem_type"] = MULTI_LABEL_PROBLEM
    return from_hub(f"the model {model!r}",
                    lambda: AutoModelForSequenceClassification.from_pretrained(model, **options))


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Return AdamW parameter groups: weight decay on weight matrices, none on biases and LayerNorm weights."""
    import torch
    from transformers.trainer_pt_utils import get_parameter_names

    decay = set(get_parameter_names(model, [torch.nn.LayerNorm], ["bias"]))  # the rule the Trainer applies
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for name, p in named if name in decay], "weight_decay": weight_decay},
            {"params": [p for name, p in named if name not in decay], "weight_decay": 0.0}]


def logits_of(output: ModelOutput) -> torch.Tensor:
    """Return a classifier output's logits."""
    return output.logits


def cls_vector(output: ModelOutput) -> torch.Tensor:
    """Return an encoder output's last hidden state at the first ([CLS]) position."""
    return output.last_hidden_state[:, 0]


def batched_forward(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, input_ids: Sequence[Sequence[int]],
                    batch_size: int = 64, *, pick: Callable = logits_of, progress: bool | str | None = None,
                    token_type_ids: Sequence[Sequence[int]] | None = None,
                    max_tokens: int | None = CPU_BATCH_TOKENS) -> np.ndarray:
    """Return pick(model(batch)) for each token-id list, in batches of similar length (serving.batched_rows, which
    says what progress means), rows in input order; on a CPU at most max_tokens padded tokens a batch, on a GPU
    batch_size texts whatever their length."""
    import torch

    def compute(features: dict[str, list[list[int]]]) -> np.ndarray:
        batch = tokenizer.pad(features, return_tensors="pt")
        with torch.inference_mode():
            return pick(model(**{k: v.to(model.device) for k, v in batch.items()})).float().cpu().numpy()

    width = model.config.num_labels if pick is logits_of else model.config.hidden_size
    return batched_rows(input_ids, batch_size, compute, width, progress=progress, token_type_ids=token_type_ids,
                        max_tokens=max_tokens if model.device.type == "cpu" else None)



# ---------------------------------------------------------------- naming and checking a model


def is_hub_id(name: str) -> bool:
    """Return True when a model or dataset name is a well-formed Hub id, not a local path or a profile's short name."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if name in LOCAL_MODELS or resolve_path(name).exists():
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def check_model_name(name: str, setting: str = "model") -> None:
    """Raise SettingError, in one sentence, for a model that is neither a model folder nor a well-formed Hub id."""
    path = Path(name).expanduser()
    if path.is_file():
        raise SettingError("is a file, not a model folder: give the folder holding config.json and the weights (a "
                           "run's outputs/<run>/model); a data file goes to the data settings", setting, name)
    if path.exists() and not (path / "config.json").is_file():
        raise SettingError("is a folder without config.json, so it holds no model: give a folder saved with "
                           "save_pretrained (or by `distilnb train`), or a Hub id", setting, name)
    if not (name in LOCAL_MODELS or path.exists() or is_hub_id(name)):
        raise SettingError(f"names no folder (relative paths start at {Path.cwd()}) and is not a Hub id like "
                           "distilbert-base-uncased or owner/name", setting, name)


def model_folder(model_dir: str | None, cfg: Config) -> str:
    """Return the model to load: model_dir (a folder or Hub id), else the run's model folder, which must exist."""
    if model_dir is None:
        folder = cfg.paths.model
        if not (folder / "config.json").is_file():
            raise NotFoundError(f"No model folder at {folder} yet: train one first (`python -m distilnb train` with "
                                "the same profile, run name and output root), or name a model folder.")
        return str(folder)
    check_model_name(model_dir, "model_dir")
    path = Path(model_dir).expanduser()
    return str(path) if path.exists() else model_dir


def check_head_is_trained(model: str, label_names: list[str]) -> str | None:
    """Refuse a local model labelled LABEL_0, LABEL_1... without a fine-tuning record; return a warning for such a Hub
    model (its head may be untrained), else None."""
    if not all(GENERIC_LABEL.fullmatch(name) for name in label_names):
        return None
    folder = Path(model)
    if not folder.is_dir():
        return (f"Warning: {model} names its classes only {', '.join(label_names)}: check that its head was "
                "fine-tuned and what each label means before trusting these predictions.")
    if not any((folder / name).is_file() for name in FINE_TUNING_RECORDS):
        raise ModelError(f"{model} has generic labels ({', '.join(label_names)}) and no fine-tuning record "
                         f"({' or '.join(FINE_TUNING_RECORDS)}): its classification head is untrained, so its "
                         "predictions mean nothing. Fine-tune it first, with {model} set to it.")
    return None


def model_max_length(model: str, tokenizer: PreTrainedTokenizerBase) -> int:
    """Return the longest input the model takes, in tokens (its position embeddings), at most 512."""
    from transformers import AutoConfig

    config: PretrainedConfig = from_hub(f"the model {model!r}", lambda: AutoConfig.from_pretrained(model))
    positions = getattr(config, "max_position_embeddings", None) or MAX_LENGTH_RANGE[1]
    return min(positions, tokenizer.model_max_length, MAX_LENGTH_RANGE[1])
