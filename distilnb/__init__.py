"""distilnb: the tested functions behind the DistilBERT text-classification course."""

from distilnb.config import Config
from distilnb.errors import DistilnbError, HubUnreachableError

__all__ = ["Config", "DistilnbError", "HubUnreachableError"]
__version__ = "0.1.0"
