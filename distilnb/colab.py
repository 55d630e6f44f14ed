"""The repository address, the one setting behind every "Open in Colab" badge and every notebook's Colab setup cell."""

from __future__ import annotations

import re
from pathlib import Path

# Change the address here, then run `python -m distilnb.colab` to rewrite the badges and setup cells from it.
REPOSITORY = "https://github.com/distilnb/distilnb"
BRANCH = "main"

_BADGE_URL = re.compile(r"https://colab\.research\.google\.com/github/[^/\s)]+/[^/\s)]+/blob/[^/\s)]+/")
_SETUP_LINE = re.compile(r'REPOSITORY = \\?"[^"\\]*\\?"')


def repository_path() -> str:
    """Return 'owner/name' of the repository."""
    return REPOSITORY.rstrip("/").split("github.com/")[1]


def badge_url(notebook: str) -> str:
    """Return the Colab address that opens a notebook of the repository (path relative to the repository root)."""
    return f"https://colab.research.google.com/github/{repository_path()}/blob/{BRANCH}/{notebook}"


def badge_markdown(notebook: str) -> str:
    """Return the Markdown of an "Open in Colab" badge for a notebook."""
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({badge_url(notebook)})"


def sync_links(root: Path) -> list[Path]:
    """Rewrite the badges and setup cells of the README and notebooks from REPOSITORY; return the changed files."""
    changed = []
    for path in [root / "README.md", *sorted((root / "notebooks").glob("*.ipynb"))]:
        text = path.read_text()
        new = _BADGE_URL.sub(f"https://colab.research.google.com/github/{repository_path()}/blob/{BRANCH}/", text)
        quote = '\\"' if path.suffix == ".ipynb" else '"'
        new = _SETUP_LINE.sub(f"REPOSITORY = {quote}{REPOSITORY}{quote}", new)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


if __name__ == "__main__":
    from distilnb.config import project_root

    for path in sync_links(project_root()):
        print("updated", path)
