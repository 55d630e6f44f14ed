"""Stage 05: a web demo anyone can try: a Gradio app over a Predictor, from a notebook cell or `distilnb demo`.

The app has a text box, the predicted label with its confidence, every class's score as bars, the word attributions
of distilnb.explain as highlighted text, and examples (from the test split when the caller passes them). An empty or
oversized text gets a message, never a stack trace. It binds to 127.0.0.1 by default, so only this machine can open
it; ``share=True`` asks Gradio for a public link (see ``launch``).

Needs the demo extra (``pip install -e ".[demo]"``); gradio and captum are imported only when an app is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from distilnb.errors import DistilnbError
from distilnb.explain import require, word_attributions

if TYPE_CHECKING:
    import gradio
    import pandas as pd

    from distilnb.predict import Predictor

DEFAULT_HOST = "127.0.0.1"  # this machine only; 0.0.0.0 opens the app to the whole network
DEFAULT_MAX_CHARS = 2000
MAX_EXAMPLES = 8
EMPTY_MESSAGE = "Type a text first: there is nothing to classify."


class DemoError(DistilnbError, ValueError):
    """Raised, with a sentence for the user, when the demo cannot start (no model folder, a bad option)."""


def check_text(text: str | None, max_chars: int = DEFAULT_MAX_CHARS) -> str | None:
    """Return a message for the user when a text cannot be classified (empty, too long); None when it can."""
    if text is None or not str(text).strip():
        return EMPTY_MESSAGE
    if len(text) > max_chars:
        return (f"The text has {len(text):,} characters; this demo takes at most {max_chars:,}. "
                "Shorten it and try again.")
    return None


PAIR_JOIN = "\n\n"  # between a pair's two texts in the highlighted words


def highlighted(attributions: pd.DataFrame) -> list[tuple[str, float | None]]:
    """Return the text as (piece, score) pairs for gr.HighlightedText: each word's attribution scaled to [-1, 1]
    (positive toward the predicted class), the spaces and anything between words with None; a pair's two texts
    (explain.word_attributions with second) one after the other, scaled together."""
    largest = float(attributions["attribution"].abs().max()) if len(attributions) else 0.0
    if "part" not in attributions.columns:
        return text_pieces(attributions, attributions.attrs["text"], largest)
    first, second = (attributions[attributions["part"] == part] for part in (0, 1))
    return [*text_pieces(first, attributions.attrs["text"], largest), (PAIR_JOIN, None),
            *text_pieces(second, attributions.attrs["second"], largest)]


def text_pieces(attributions: pd.DataFrame, text: str, largest: float) -> list[tuple[str, float | None]]:
    """Return one text's (piece, score) pairs, each word's attribution divided by `largest`."""
    pieces: list[tuple[str, float | None]] = []
    cursor = 0
    for start, end, value in attributions[["start", "end", "attribution"]].itertuples(index=False):
        if start > cursor:
            pieces.append((text[cursor:start], None))
        pieces.append((text[start:end], round(float(value) / largest, 4) if largest > 0 else 0.0))
        cursor = max(cursor, end)
    if cursor < len(text):
        pieces.append((text[cursor:], None))
    return pieces


def confidence_line(result: dict) -> str:
    """Return the one-line answer shown above the bars, e.g. '**refund**, 64.9% confident'; for a multi-label model,
    every label above its threshold, e.g. '**refund** (81.0%), **delivery** (64.2%): each above its threshold'."""
    if "labels" not in result:
        return f"**{result['label']}**, {result['score']:.1%} confident"
    if not result["labels"]:
        top = max(result["scores"], key=result["scores"].get)
        return f"No label reaches its threshold; the likeliest is **{top}** ({result['scores'][top]:.1%})."
    found = ", ".join(f"**{name}** ({result['scores'][name]:.1%})" for name in result["labels"])
    return f"{found}: {'each' if len(result['labels']) > 1 else 'it is'} above its threshold"


PAIR_NOTE = ("The words of both texts are shaded, the first text's above: a pair's label rests on how the two "
             "relate, which one word's share says only in part.")
LIKELIEST = "the likeliest label"  # the multi-label explanation's default choice


def classify(predictor: Predictor, text: str | None, max_chars: int = DEFAULT_MAX_CHARS, n_steps: int = 50, *,
             second: str | None = None, pairs: bool = False,
             explain: str | None = None) -> tuple[dict[str, float] | None, list[tuple[str, float | None]] | None, str]:
    """Return what the app shows for a text (or, with pairs, the pair text and second): (every class's score,
    highlighted words, message); on a text that cannot be classified, (None, None, the message). A pair's words are
    attributed over both texts; a multi-label model's explain the label `explain` (default: the likeliest), which the
    message names."""
    problem = check_text(text, max_chars) or (check_text(second, max_chars) if pairs else None)
    if problem:
        return None, None, problem
    result = predictor.predict([(text, second) if pairs else text])[0]
    target = explain if explain and explain != LIKELIEST else None
    attributions = word_attributions(predictor, cast(str, text), target=target, n_steps=n_steps,  # checked above
                                     second=second if pairs else None)
    note = " The text was cut at the model's max_length; the words past it count for nothing." \
        if attributions.attrs["truncated"] else ""
    if getattr(predictor, "multi_label", False):
        note += f"\n\nThe words explain the label **{attributions.attrs['target']}**."
    if pairs:
        note += f"\n\n{PAIR_NOTE}"
    return result["scores"], highlighted(attributions), confidence_line(result) + note


def title_for(multi_label: bool, pairs: bool) -> str:
    """Return the app's title for its task."""
    if multi_label:
        return "Which labels fit this text?"
    return "Which class is this pair of texts?" if pairs else "Which class is this text?"


def shown_examples(examples: list | None, pairs: bool, max_chars: int) -> list[list[str]]:
    """Return up to MAX_EXAMPLES examples as rows of the app's inputs: [text], or [first, second] for pairs; blank
    ones and ones of the other shape are left out, each text cut to max_chars."""
    width = 2 if pairs else 1
    rows = [[item] if isinstance(item, str) else list(item) for item in (examples or [])]
    fit = [row for row in rows if len(row) == width and all(isinstance(t, str) and t.strip() for t in row)]
    return [[text[:max_chars] for text in row] for row in fit[:MAX_EXAMPLES]]


def build_app(predictor: Predictor, examples: list | None = None, max_chars: int = DEFAULT_MAX_CHARS,
              n_steps: int = 50, title: str | None = None, *, pairs: bool = False) -> gradio.Blocks:
    """Return a gradio.Blocks app over a Predictor: text box, label and confidence (a multi-label model: every label
    above its threshold, and a choice of the label the words explain), every class's score as bars, word attributions
    as highlighted text, and `examples` (say, a few texts of the test split; (first, second) pairs for pairs=True) to
    click; pairs=True: two text boxes, the words of both shaded. title: by default one for the task."""
    gr = require("gradio", "The demo")
    require("captum.attr", "The demo's word attributions")
    if max_chars < 1:
        raise DemoError(f"max_chars = {max_chars}: the demo must accept at least one character.")
    names = list(predictor.label_names)
    multi = bool(getattr(predictor, "multi_label", False))
    title = title or title_for(multi, pairs)
    shown = shown_examples(examples, pairs, max_chars)

    def answer(text: str | None,
               *rest: str | None) -> tuple[dict[str, float] | None, list[tuple[str, float | None]] | None, str]:
        second = rest[0] if pairs else None
        explain = rest[0] if multi and rest else None
        scores, words, message = classify(predictor, text, max_chars, n_steps, second=second, pairs=pairs,
                                          explain=explain)
        if scores is None:
            gr.Warning(message)
        return scores, words, message

    sorts = ("gives a text every label that fits, of" if multi
             else "sorts a pair of texts into one of" if pairs else "sorts a text into one of")
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"## {title}\nThe model {sorts}: {', '.join(names)}. "
                    f"Type up to {max_chars:,} characters and press Classify.")
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="First text" if pairs else "Text", lines=4, placeholder="Type a sentence",
                                  elem_id="demo-text")
                inputs = [text]
                if pairs:
                    inputs.append(gr.Textbox(label="Second text", lines=4, placeholder="Type the second text",
                                             elem_id="demo-second"))
                if multi:
                    inputs.append(gr.Dropdown([LIKELIEST, *names], value=LIKELIEST, label="Words explain the label",
                                              elem_id="demo-explain"))
                button = gr.Button("Classify", variant="primary", elem_id="demo-classify")
                if shown:
                    gr.Examples(examples=shown, inputs=inputs[:len(shown[0])], cache_examples=False,
                                label="Examples from the test split")
            with gr.Column():
                message = gr.Markdown(elem_id="demo-message")
                scores = gr.Label(label="Every class's score", num_top_classes=len(names), elem_id="demo-scores")
                words = gr.HighlightedText(label="Why: red words push toward the label, purple words pull away",
                                           show_legend=True, combine_adjacent=False, elem_id="demo-words")
        gr.on(triggers=[button.click, text.submit], fn=answer, inputs=inputs, outputs=[scores, words, message],
              api_name="classify")
    app.queue(default_concurrency_limit=1)  # one model on one machine: texts take turns
    return app


def launch(app: gradio.Blocks, share: bool = False, host: str = DEFAULT_HOST, port: int | None = None,
           block: bool = True) -> str:
    """Start the app and return its address; block=True (the command line) serves until Ctrl-C.

    host 127.0.0.1 lets only this machine in; port None takes the first free one from 7860. share=True also asks
    Gradio's servers for a public https link, valid for up to a week, that reaches this app from anywhere while it
    runs (in Colab, the only way to open it from a phone): whoever has the link can type texts, see the model's
    labels, scores and attributions and call its API; the texts are processed on this machine.
    """
    _, local_url, share_url = app.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
                                         show_error=False, quiet=not block, ssr_mode=False, mcp_server=False)
    return share_url or local_url


# ---------------------------------------------------------------- a run's examples


def examples_from_run(data_folder: Path, count: int = MAX_EXAMPLES) -> list[str] | list[tuple[str, str]]:
    """Return up to `count` texts of the test split a run saved (datasets.save_to_disk), (first, second) pairs for a
    pair run, or [] when there is none."""
    if not (data_folder / "dataset_dict.json").is_file():
        return []
    try:
        import datasets

        test = datasets.load_from_disk(str(data_folder))["test"]
        rows = test.select(range(min(count, len(test))))
        if "text_pair" in rows.column_names:
            return [(str(a), str(b)) for a, b in zip(rows["text"], rows["text_pair"], strict=True)]
        return [str(text) for text in rows["text"]]
    except (KeyError, OSError, ValueError):  # no test split or no text column: the app goes without examples
        return []
