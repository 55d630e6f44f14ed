"""Chapter 02, exercise 2: pad every text to max_length, or pad each batch with the collator?"""

from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding


def computed_tokens(tokenizer, dataset, max_length: int, batch_size: int) -> dict[str, int]:
    """Return the tokens one epoch computes: real ones, padded to max_length, and padded per batch by the collator.

    Padding to `max_length` (`padding="max_length"` in the tokenize function) makes every row `max_length` long, so
    an epoch computes rows x max_length tokens whatever the texts. The collator pads each batch only to its longest row,
    so short texts in a batch of short texts cost little. The answer: with short texts and a generous `max_length`,
    padding to `max_length` computes several times the real tokens, the collator a fraction more than them
    (and length-grouped batches, chapter 02 section 5, less again).
    """

    def pad_to_max(batch):
        return tokenizer(batch["text"], padding="max_length", truncation=True, max_length=max_length)

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    padded = dataset.map(pad_to_max, batched=True)
    plain = dataset.map(tokenize, batched=True).select_columns(["input_ids", "attention_mask"])
    loader = DataLoader(plain, batch_size=batch_size, collate_fn=DataCollatorWithPadding(tokenizer))
    return {
        "real tokens": sum(len(ids) for ids in plain["input_ids"]),
        "padded to max_length": sum(len(ids) for ids in padded["input_ids"]),
        "padded per batch (collator)": sum(batch["input_ids"].numel() for batch in loader),
    }
