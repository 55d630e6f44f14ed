"""Chapter 05, exercise 2: abstain when the pipeline is unsure."""


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
