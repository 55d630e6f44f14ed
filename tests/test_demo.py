"""The web demo (distilnb.demo): served on a free local port, driven by headless Chromium and by gradio_client."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# Offline: no usage statistics, no version check, no Hub telemetry; local addresses never through a proxy.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))

# Chapter 05 needs the demo extra (pip install -e ".[demo]"): without gradio or captum this file fails, never skips.
import captum  # noqa: F401
import gradio  # noqa: F401
from test_explain import trained_model_folder

from distilnb import cli
from distilnb.demo import (
    DEFAULT_HOST,
    DEFAULT_MAX_CHARS,
    EMPTY_MESSAGE,
    build_app,
    check_text,
    confidence_line,
    highlighted,
    launch,
)
from distilnb.errors import NotFoundError, SettingError
from distilnb.explain import word_attributions
from distilnb.predict import Predictor

# Gradio's queue calls pandas options that pandas 3 deprecates; nothing of ours.
pytestmark = [pytest.mark.filterwarnings("ignore:.*no_silent_downcasting:Warning"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:Warning")]

ROOT = Path(__file__).resolve().parent.parent
TEXT = "please refund my money, the box arrived broken"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    """Return a local TCP port that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def chromium() -> str | None:
    """Return the path of Debian's Chromium (or Google Chrome), or None."""
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    """A Predictor over the MiniLM fine-tuned on the sample tickets (trained once, shared with test_explain)."""
    return Predictor.from_folder(trained_model_folder(), on="cpu")


@pytest.fixture(scope="module")
def served(predictor):
    """The app, served in a background thread on a free port of 127.0.0.1; yields its address."""
    app = build_app(predictor, examples=["where is my parcel", "I can't sign in to my account"], max_chars=300)
    url = launch(app, port=free_port(), block=False)
    assert url.startswith("http://127.0.0.1:")
    yield url
    app.close()


def test_the_browser_shows_the_predictors_label_and_scores(served, predictor, tmp_path):
    from playwright import sync_api  # the demo extra: a missing playwright fails here, never skips
    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium to drive: install Debian's chromium (make setup does it when run as root)")
    expected = predictor.predict_one(TEXT)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(served)
            page.locator("#demo-text textarea").fill(TEXT)
            page.locator("#demo-classify").click()
            heading = page.get_by_test_id("label-output-value")
            # A busy CPU can take a while over the prediction and its attributions: wait up to a minute.
            sync_api.expect(heading).to_have_text(expected["label"], timeout=60_000)
            sync_api.expect(page.locator("#demo-message")).to_contain_text(f"{expected['score']:.1%} confident")
            sync_api.expect(page.locator("#demo-words")).to_contain_text("refund")
            rows = page.locator('[data-testid$="-confidence-set"]')
            shown = {rows.nth(i).locator("dt").inner_text(): rows.nth(i).locator("dd").inner_text()
                     for i in range(rows.count())}
            page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
        finally:
            browser.close()
    assert shown == {label: f"{round(score * 100)}%" for label, score in expected["scores"].items()}
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    print(f"screenshot: {tmp_path / 'demo.png'}")


def test_the_api_gives_the_predictors_label_and_scores_and_the_word_attributions(served, predictor):
    from gradio_client import Client

    expected = predictor.predict_one(TEXT)
    attributions = word_attributions(predictor, TEXT)
    scores, words, message = Client(served, verbose=False).predict(TEXT, api_name="/classify")
    assert scores["label"] == expected["label"]
    assert {row["label"]: row["confidence"] for row in scores["confidences"]} == pytest.approx(expected["scores"])
    assert message == confidence_line(expected)
    assert "".join(piece["token"] for piece in words) == TEXT
    best = max((piece for piece in words if piece["class_or_confidence"] is not None),
               key=lambda piece: piece["class_or_confidence"])
    assert best["token"] == attributions.loc[attributions["attribution"].idxmax(), "word"]
    assert best["class_or_confidence"] == 1.0


@pytest.mark.parametrize("text, message", [("", EMPTY_MESSAGE), ("   \n", EMPTY_MESSAGE),
                                           ("x" * 301, "this demo takes at most 300")])
def test_empty_or_oversized_text_gets_a_message(served, text, message):
    from gradio_client import Client

    scores, words, shown = Client(served, verbose=False).predict(text, api_name="/classify")
    assert message in shown and not scores and words is None
    assert "Traceback" not in shown


def test_check_text_and_highlighted_pieces():
    import pandas as pd

    assert check_text("hello", 5) is None and "at most 4" in check_text("hello", 4)
    assert check_text(None) == check_text(" ") == EMPTY_MESSAGE
    frame = pd.DataFrame({"word": ["Hi", ",", "you"], "attribution": [0.5, -1.0, 0.0], "start": [0, 2, 4],
                          "end": [2, 3, 7]})
    frame.attrs["text"] = "Hi, you!"
    assert highlighted(frame) == [("Hi", 0.5), (",", -1.0), (" ", None), ("you", 0.0), ("!", None)]


def test_demo_command_options_and_a_missing_model(tmp_path):
    parser = cli.build_parser()
    args = parser.parse_args(["demo"])
    assert (args.model_dir, args.host, args.port, args.share, args.run) == (None, "127.0.0.1", None, False,
                                                                            cli.demo.run)
    args = parser.parse_args(["demo", "--model-dir", str(tmp_path), "--port", "7999", "--share", "--host", "0.0.0.0"])
    assert (args.model_dir, args.port, args.share, args.host) == (str(tmp_path), 7999, True, "0.0.0.0")
    with pytest.raises(SettingError, match="folder without config.json"):
        cli.demo.run(args)
    args = parser.parse_args(["demo", "--profile", "smoke", "--output-root", str(tmp_path)])
    with pytest.raises(NotFoundError, match="No model folder"):
        cli.demo.run(args)


def test_the_command_line_spells_the_demos_defaults():
    assert (cli.demo.DEFAULT_HOST, cli.demo.DEFAULT_MAX_CHARS) == (DEFAULT_HOST, DEFAULT_MAX_CHARS)


def test_python_m_distilnb_demo_help_works_without_importing_gradio_or_captum():
    done = subprocess.run([sys.executable, "-m", "distilnb", "demo", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--model-dir FOLDER" in done.stdout and "--share" in done.stdout and "127.0.0.1" in done.stdout
    check = ("import sys, distilnb, distilnb.explain, distilnb.demo\n"
             "heavy = sorted({'gradio', 'captum', 'playwright'} & set(sys.modules))\n"
             "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------- the demo serves its own run


@pytest.fixture(scope="module")
def runs_built(tmp_path_factory) -> dict[str, Path]:
    """Three tiny runs built without the Trainer (test_scoring.make_run): one label, several labels, pairs."""
    from test_scoring import make_run, messages, write_lines

    root = tmp_path_factory.mktemp("demo-runs")
    single = [f"{text},{names[0]}" for text, names in messages(90, seed=1)]
    multi = [f"{text},{';'.join(names)}" for text, names in messages(90, seed=2) + messages(45, seed=3, labels=2)]
    pairs = [f"{a},{b},{'same' if x == y else 'other'}"
             for (a, x), (b, y) in zip(messages(90, seed=4), messages(90, seed=5), strict=True)]
    return {"single": make_run(root, "single", write_lines(root / "single.csv", ["text,label", *single])),
            "multi": make_run(root, "multi", write_lines(root / "multi.csv", ["text,labels", *multi]), multi=True,
                              label_column="labels", label_separator=";"),
            "pairs": make_run(root, "pairs", write_lines(root / "pairs.csv", ["question,answer,label", *pairs]),
                              text_column="question", text_pair_column="answer")}


def served_with(monkeypatch, *flags: str) -> dict:
    """Run `distilnb demo` with flags, the app built but not served; return build_app's arguments."""
    from distilnb import demo

    built = {}
    build = demo.build_app
    monkeypatch.setattr(demo, "build_app", lambda predictor, **kwargs: built.update(kwargs, app=build(predictor,
                                                                                                      **kwargs)))
    monkeypatch.setattr(demo, "launch", lambda *args, **kwargs: None)
    cli.demo.run(cli.build_parser().parse_args(["demo", *flags]))
    return built


def test_the_demo_takes_its_examples_from_the_model_dirs_own_run(runs_built, monkeypatch):
    from distilnb import runs

    single, multi = runs_built["single"], runs_built["multi"]
    # started where another run is the default: the examples must still be the --model-dir's
    built = served_with(monkeypatch, "--profile", "smoke", "--output-root", str(single.parent.parent), "--run-name",
                        "single", "--model-dir", str(multi))
    test = runs.saved_splits(multi.parent / "data")[0]["test"]["text"]
    assert built["examples"] and set(built["examples"]) <= set(test)


def test_a_pair_runs_examples_are_pairs_and_the_words_of_both_texts_are_shaded(runs_built, monkeypatch):
    from distilnb import demo, runs

    pairs = runs_built["pairs"]
    built = served_with(monkeypatch, "--model-dir", str(pairs))
    test = runs.saved_splits(pairs.parent / "data")[0]["test"]
    assert built["pairs"] and built["examples"][0] == (test["text"][0], test["text_pair"][0])
    assert demo.shown_examples(built["examples"], True, 10)[0] == [test["text"][0][:10], test["text_pair"][0][:10]]
    scores, words, message = demo.classify(Predictor.from_folder(pairs, on="cpu"), "where is it", second="at the depot",
                                           pairs=True, n_steps=4)
    assert scores and demo.PAIR_NOTE in message
    assert "".join(piece for piece, _ in words) == f"where is it{demo.PAIR_JOIN}at the depot"
    assert {piece for piece, value in words if value is not None} == {"where", "is", "it", "at", "the", "depot"}


def test_a_multi_label_explanation_names_its_label_and_takes_another_when_asked(runs_built):
    from distilnb import demo

    predictor = Predictor.from_folder(runs_built["multi"], on="cpu")
    scores, words, message = demo.classify(predictor, "my parcel never came", n_steps=4)
    likeliest = max(scores, key=scores.get)
    assert words and f"The words explain the label **{likeliest}**." in message
    other = next(name for name in predictor.label_names if name != likeliest)
    assert f"explain the label **{other}**" in demo.classify(predictor, "my parcel never came", n_steps=4,
                                                             explain=other)[2]


def test_the_title_fits_the_task():
    from distilnb.demo import title_for

    assert title_for(multi_label=True, pairs=False) == "Which labels fit this text?"
    assert title_for(multi_label=False, pairs=True) == "Which class is this pair of texts?"
    assert title_for(multi_label=False, pairs=False) == "Which class is this text?"


def test_pair_attributions_cover_both_texts_and_keep_completeness(runs_built):
    predictor = Predictor.from_folder(runs_built["pairs"], on="cpu")
    frame = word_attributions(predictor, "where is my parcel", second="it left the depot", n_steps=64)
    assert frame.loc[frame["part"] == 0, "word"].tolist() == ["where", "is", "my", "parcel"]
    assert frame.loc[frame["part"] == 1, "word"].tolist() == ["it", "left", "the", "depot"]
    assert frame.attrs["second"] == "it left the depot" and frame.attrs["completeness_error"] < 0.05
    expected = predictor.predict([("where is my parcel", "it left the depot")])[0]["label"]
    assert frame.attrs["predicted"] == expected
