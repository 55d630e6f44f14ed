"""distilnb: the tested functions behind the DistilBERT text-classification course."""

import os

# Tokenizers warn after every fork (DataLoader workers, Jupyter); the course never shares a tokenizer across forks.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from distilnb.config import Config
from distilnb.errors import DistilnbError, HubUnreachableError

__all__ = ["Config", "DistilnbError", "HubUnreachableError"]
__version__ = "0.1.0"
