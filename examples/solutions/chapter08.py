"""Chapter 08, exercises 1 to 4: the temperature seen, why T², whether the teacher helps, and which layers to keep."""

import copy
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification

from distilnb import distill


def softened(teacher_logits: np.ndarray, temperatures=(1, 2, 4, 10)) -> pd.DataFrame:
    """Return, per temperature T, the mean probability of each text's top class and second class under
    softmax(logits / T), and their mean entropy in nats (attrs["uniform entropy"]: log of the number of classes).

    As T grows every distribution flattens: the top class loses probability, the second choices gain it, and the
    entropy climbs towards the uniform distribution's. A moderate T lets the student see which wrong classes the
    teacher finds near; a very large T leaves every class about equally likely, and nothing of the teacher to learn.
    """
    logits = torch.as_tensor(np.asarray(teacher_logits), dtype=torch.float32)
    rows = {}
    for t in temperatures:
        probabilities = torch.softmax(logits / t, dim=-1)
        top = probabilities.topk(2, dim=-1).values
        entropy = -(probabilities * probabilities.clamp_min(1e-12).log()).sum(dim=-1)
        rows[t] = {"top class": top[:, 0].mean().item(), "second class": top[:, 1].mean().item(),
                   "entropy": entropy.mean().item()}
    table = pd.DataFrame(rows).T.rename_axis("T")
    table.attrs["uniform entropy"] = math.log(logits.shape[1])
    return table


def soft_gradient_norms(student_logits, teacher_logits, temperatures=(1, 2, 4, 8)) -> pd.DataFrame:
    """Return, per temperature T, the norm of the gradient of KL(softmax(teacher / T) || softmax(student / T)) with
    respect to the student's logits, without and with the factor T².

    The gradient is (softmax(student / T) - softmax(teacher / T)) / T per text: the softened probabilities differ less
    as T grows (about 1 / T for large T), and the division adds another 1 / T, so the soft term's gradients shrink like
    1 / T². Multiplied by T² they keep about the same size at every T: the labels' term and the teacher's keep the
    weights alpha and 1 - alpha say, whatever the temperature.
    """
    teacher = torch.as_tensor(teacher_logits, dtype=torch.float32)
    rows = {}
    for t in temperatures:
        student = torch.as_tensor(student_logits, dtype=torch.float32).clone().requires_grad_(True)
        kl = F.kl_div(F.log_softmax(student / t, dim=-1), F.softmax(teacher / t, dim=-1), reduction="batchmean")
        (gradient,) = torch.autograd.grad(kl, student)
        rows[t] = {"without T²": gradient.norm().item(), "with T²": (t**2 * gradient).norm().item()}
    return pd.DataFrame(rows).T.rename_axis("T")


def teacher_ablation(teacher_dir, alphas=(1.0, 0.5), **settings) -> pd.DataFrame:
    """Return the validation accuracy and macro-F1 of a student distilled with each alpha (1.0: the labels alone),
    each trained by distill.distill from the same start (the teacher's every other layer) into its own run folder
    beside the teacher's; `settings` (epochs=..., seed=...) go to every student's Config.

    The student with alpha 1.0 still starts from the teacher's layers, so it is a strong baseline. The teacher's
    probabilities helped only if the distilled student scores above it by more than a few validation texts (on 187
    texts one text is about 0.005 of accuracy); a smaller difference, either way, is the noise of one small split.
    """
    run = Path(teacher_dir).parent.name
    rows = {}
    for alpha in alphas:
        cfg = distill.student_config(teacher_dir, run_name=f"{run}-alpha-{alpha:g}", **settings)
        # the chapter's student learns from the training texts alone: no masked copies (distill's default on a split
        # this small), so that the two students differ only in alpha
        result = distill.distill(cfg, teacher_dir, alpha=alpha, transfer_copies=0)
        name = f"alpha={alpha:g}" + (" (labels only)" if alpha == 1 else "")
        rows[name] = {"accuracy": result.validation["accuracy"], "f1_macro": result.validation["f1_macro"]}
    return pd.DataFrame(rows).T


def student_with_layers(teacher, kept: list[int]):
    """Return a student keeping the teacher's layers `kept` (in that order), its embeddings and classification head:
    the chapter's section 2 for any choice of layers, such as [0, 1, 2] (the bottom half) against [0, 2, 4].

    The case for every other layer: it keeps features from every depth of the teacher, the top layers included,
    which fine-tuning changed most; the bottom half keeps none of them. Which scores better on your data is for the
    validation split to say. Fewer layers train and predict faster (section 7's timing says by how much here).
    """
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(kept)
    student = AutoModelForSequenceClassification.from_config(config)
    weights = {}
    for name, weight in teacher.state_dict().items():
        layer = re.search(r"\.layer\.(\d+)\.", name)
        if layer is None:
            weights[name] = weight
        elif int(layer.group(1)) in kept:
            weights[name.replace(layer.group(0), f".layer.{kept.index(int(layer.group(1)))}.", 1)] = weight
    student.load_state_dict(weights)
    return student
