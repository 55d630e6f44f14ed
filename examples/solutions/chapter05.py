"""Chapter 05, exercises 2 (abstain when unsure) and 5 (why was it wrong?)."""


def pipeline_or_abstain(classifier, texts: list[str], threshold: float = 0.7) -> list[str]:
    """Return each text's label from a text-classification pipeline, or "unsure" where its top score is below threshold.

    With `top_k=None` the pipeline returns, per text, every class's score sorted from most to least likely; with the
    default it returns only the top one (a dict). Either way the first entry is the prediction and its score the
    confidence. Abstaining trades coverage for accuracy: the texts kept are the ones the model is surest of, so their
    accuracy is higher, but only if the model is calibrated (chapter 04), which is why the threshold is fitted on
    validation data, never on the test split.
    """
    labels = []
    for output in classifier(list(texts)):
        top = output[0] if isinstance(output, list) else output
        labels.append(top["label"] if top["score"] >= threshold else "unsure")
    return labels


def predict_or_abstain(predictor, texts: list[str], threshold: float = 0.7) -> list[str]:
    """Return each text's predicted label, or "unsure" where the top probability is below threshold (05, exercise 2)."""
    return [p["label"] if p["score"] >= threshold else "unsure" for p in predictor.predict(texts)]


def attribution_contrast(predictor, text: str, true_label: str, n_steps: int = 50):
    """Return each word's attribution toward the predicted class and toward the true class, side by side (ex. 5).

    Words with a large positive attribution toward the predicted class and a negative one toward the true class are
    what pulled the model the wrong way. When those words really do belong to the predicted class (the text mixes two
    topics, or its label looks wrong to a reader), the error is the label's; when they are incidental words (a product
    name, a greeting) that merely co-occur with that class in training, the model learned a shortcut.
    """
    import pandas as pd

    from distilnb import explain

    predicted = explain.word_attributions(predictor, text, n_steps=n_steps)
    true = explain.word_attributions(predictor, text, target=true_label, n_steps=n_steps)
    return pd.DataFrame({"word": predicted["word"],
                         f"toward {predicted.attrs['target']!r} (predicted)": predicted["attribution"],
                         f"toward {true_label!r} (true)": true["attribution"]})
