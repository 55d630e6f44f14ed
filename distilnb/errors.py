"""Errors written for users, and the translation of Hub outages into one plain sentence."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


# A setting named in a message for people, {name} or {name=value}: each front end spells it in its own words.
SETTING_MENTION = re.compile(r"\{([a-z][a-z0-9_]*)(?:=([^{}]*))?\}")
# Options that are not Config fields but that a message may tell the user to set (evaluate's and reading's).
OPTION_NAMES = frozenset({"skip_seen", "chunk", "encoding", "encoding_errors", "header", "format", "test_file",
                          "model_dir", "threads", "resume", "output_dir", "default_thresholds", "echo"})


def parameter_words(name: str, value: str | None) -> str:
    """Return a setting as a notebook parameter or Config field says it: `epochs=4`, `skip_seen=True`."""
    return f"{name}={value}" if value is not None else name


def mention(name: str, value: str | None) -> str:
    """Return a setting's mention unspelt ({name} or {name=value}), for a front end to spell later."""
    return "{" + name + (f"={value}" if value is not None else "") + "}"


# The names a message may mention as settings: OPTION_NAMES, and every Config field (config registers them, since
# config imports this module and not the reverse). A brace pair around another word is left as it is.
KNOWN_SETTINGS: set[str] = set(OPTION_NAMES)


def register_settings(names: Iterable[str]) -> None:
    """Add setting names that messages may mention ({name} or {name=value})."""
    KNOWN_SETTINGS.update(names)


def spell(message: str, name_of: Callable[[str, str | None], str] = parameter_words) -> str:
    """Return a message with each setting it mentions ({name} or {name=value}) spelt by name_of(name, value)."""
    def one(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        return name_of(name, value) if name in KNOWN_SETTINGS else match.group(0)

    return SETTING_MENTION.sub(one, message)


class DistilnbError(Exception):
    """An error whose message is written for a user: what went wrong, with numbers, and what to do.

    The message names the settings that would fix it as {name} or {name=value}, never as a flag: str() spells them
    as a notebook's parameters (`skip_seen=True`), words() as the caller likes (the command line: `--skip-seen`).
    """

    def words(self, name_of: Callable[[str, str | None], str] = parameter_words) -> str:
        """Return the message with the settings it names spelt by name_of(name, value)."""
        message = self.args[0] if self.args and isinstance(self.args[0], str) else super().__str__()
        return spell(message, name_of)

    def __str__(self) -> str:
        return self.words()


class HubUnreachableError(DistilnbError, RuntimeError):
    """Something must come from the Hugging Face Hub and cannot."""


NO_VALUE = object()  # a SettingError whose message is a whole sentence, not a rule about one value


class SettingError(DistilnbError, ValueError):
    """A setting (parameter, DISTILNB_* variable or flag) has a value that cannot work.

    Built as SettingError(rule, setting, value): which setting, what value, and the rule it breaks ("must be more
    than 0"; other settings named in it as {name}). str() speaks the notebook's words (`epochs = 0 must be more than
    0.`); rule_words() lets the command line say the same with its flags (`--epochs 0 must be more than 0.`). Built
    with a message and no value, it is that message as it is. `variable` names the DISTILNB_* variable the value
    came from.
    """

    def __init__(self, rule: str, setting: str | None = None, value: object = NO_VALUE) -> None:
        super().__init__(rule)
        self.rule, self.setting, self.value = rule, setting, value
        self.variable: str | None = None
        self.raw: str | None = None  # the variable's text, as written

    def rule_words(self, name_of: Callable[[str], str] = str, separator: str = " = ",
              show: Callable[[object], str] = repr) -> str:
        """Return the message with each setting spelt by name_of (a parameter, a flag), its value shown by show."""
        if self.value is NO_VALUE or self.setting is None:
            return self.rule
        rule = self.rule.format_map(_Spelling(name_of))
        return f"{name_of(self.setting)}{separator}{show(self.value)} {rule}."

    def __str__(self) -> str:
        said = self.rule_words()
        return f"{self.variable}={self.raw!r}: {said}" if self.variable else said


class _Spelling(dict):
    """The names in a rule's {placeholders}, spelt by a function (a parameter's name, a flag)."""

    def __init__(self, name_of: Callable[[str], str]) -> None:
        super().__init__()
        self.name_of = name_of

    def __missing__(self, key: str) -> str:
        return self.name_of(key)


class DataError(DistilnbError, ValueError):
    """The data cannot be used as it is (a missing column, a class too small to split, ...)."""


class DataTypeError(DistilnbError, TypeError):
    """A value has a type the course cannot use (a text that is not a string, one string where a list is wanted)."""


class ColumnError(DataError, KeyError):
    """A column the run needs is not in the data."""


class NotFoundError(DistilnbError, FileNotFoundError):
    """A file, folder or package the run needs is not there."""


class ModelError(DistilnbError, ValueError):
    """A model folder or id cannot be used as asked (unsafe weights, labels that do not match, ...)."""


def plural(n: int, word: str, words: str | None = None) -> str:
    """Return '1 label' or '3 labels' (with thousands separators)."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"


def short_list(items: Iterable[object], limit: int = 5, width: int = 60) -> str:
    """Return items joined by commas, cut after `limit` with '… and N more' and each to `width` characters."""
    shown = [str(item) for item in items]
    more = len(shown) - limit
    cut = [item if len(item) <= width else item[: width - 1] + "…" for item in shown[:limit]]
    return ", ".join(cut) + (f" … and {more:,} more" if more > 0 else "")


def hub_offline() -> bool:
    """Return True when huggingface_hub is in offline mode (HF_HUB_OFFLINE, as the libraries read it at import)."""
    from huggingface_hub import constants

    return constants.is_offline_mode()


def offline_error_types() -> tuple[type[BaseException], ...]:
    """Return the exception types that mean the Hub could not be reached: huggingface_hub's own (offline mode, a file
    not in the cache), its HTTP client's transport errors (no route, a timeout, a proxy that refuses), and Python's
    ConnectionError, which datasets raises in their place ("Couldn't reach ... on the Hub") with the cause dropped."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled
    from huggingface_hub.utils import httpx  # the client huggingface_hub's session is made of, whatever its version

    types: tuple[type[BaseException], ...] = (LocalEntryNotFoundError, OfflineModeIsEnabled, httpx.TransportError,
                                              ConnectionError)
    datasets_errors = sys.modules.get("datasets.exceptions")  # only an error datasets raised can be one of its types
    if datasets_errors is not None and hub_offline():  # online, DatasetNotFoundError means a misspelt id
        types += (datasets_errors.DatasetNotFoundError,)
    return types


def is_offline_error(error: BaseException | None) -> bool:
    """Return True when an exception, or one in its chain, is of a type that means the Hub could not be reached."""
    types = offline_error_types()
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, types):
            return True
        error = error.__cause__ or error.__context__
    return False


def unreachable(what: str) -> HubUnreachableError:
    """Return the one-sentence error for something that could not be downloaded."""
    return HubUnreachableError(
        f"Could not download {what} from the Hugging Face Hub (no network, or HF_HUB_OFFLINE is set): "
        "connect and run again, pre-download it with `python -m distilnb download` on a machine with network, "
        "point the parameter at a local folder or file, or use the offline course with DISTILNB_PROFILE=offline."
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """Return True when the Hub's endpoint answers within `timeout` seconds, asked through huggingface_hub's own HTTP
    session, so HTTPS_PROXY, its offline mode (HF_HUB_OFFLINE) and a client factory the user set all apply."""
    from huggingface_hub import constants, get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)  # any answer, even an error status, is an answer
    except offline_error_types():
        return False
    return True


@contextmanager
def hub_errors(what: str, needs_network: bool = False) -> Iterator[None]:
    """Turn an offline error raised inside the block into HubUnreachableError naming `what`; let others through.

    needs_network=True checks first that the Hub answers: offline, the libraries would otherwise retry for about
    half a minute, printing a warning each time, before failing.
    """
    if needs_network and not hub_offline() and not hub_reachable():
        raise unreachable(what)
    try:
        yield
    except Exception as error:
        if not is_offline_error(error):
            raise
        raise unreachable(what) from None


def from_hub(what: str, load: Callable[[], T]) -> T:
    """Return load(), with an offline failure turned into HubUnreachableError naming `what`."""
    with hub_errors(what):
        return load()
