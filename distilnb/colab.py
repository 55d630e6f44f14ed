"""The notebooks' Colab set-up: on a Colab GPU with no profile chosen, run the course's full profile."""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

PROFILE_VARIABLE = "DISTILNB_PROFILE"


def in_colab() -> bool:
    """Return True inside Google Colab (its kernel has imported google.colab)."""
    return "google.colab" in sys.modules


def choose_profile(environ: MutableMapping[str, str], gpu: bool) -> tuple[str, bool]:
    """Return (the profile the course will run, whether it was chosen here): a set DISTILNB_PROFILE wins, then GPU."""
    if environ.get(PROFILE_VARIABLE):
        return environ[PROFILE_VARIABLE], False
    if gpu:
        environ[PROFILE_VARIABLE] = "full"  # DistilBERT on emotion: what the course is named after, in minutes on a GPU
        return "full", True
    return "offline", False


def setup(environ: MutableMapping[str, str] | None = None, gpu: bool | None = None) -> str:
    """Inside Colab, choose the profile from the GPU and say so; elsewhere change nothing. Return the profile."""
    environ = os.environ if environ is None else environ
    if not in_colab():
        return environ.get(PROFILE_VARIABLE) or "offline"
    # Colab's kernels ask for experiment trackers and fork tokenizer threads: neither helps a course.
    environ.update(TOKENIZERS_PARALLELISM="false", WANDB_DISABLED="true", WANDB_MODE="disabled")
    if gpu is None:
        import torch

        gpu = torch.cuda.is_available()
    profile, chosen = choose_profile(environ, gpu)
    if chosen:
        print(f"GPU found: {PROFILE_VARIABLE}=full, DistilBERT fine-tuned on dair-ai/emotion. "
              'For the small CPU course instead, set PROFILE = "offline" in the parameters cell.')
    elif not gpu:
        print(f"No GPU: the {profile} profile runs on the CPU. For DistilBERT, choose Runtime > Change runtime type "
              "> T4 GPU, then run this cell again.")
    else:
        print(f"{PROFILE_VARIABLE}={profile} was set before this cell: the course keeps it.")
    return profile
