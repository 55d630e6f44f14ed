"""Maintenance tool: rewrite every "Open in Colab" badge and every notebook's clone address from one setting.

Run `python tools/colab_links.py` after changing REPOSITORY or BRANCH (a test fails while they disagree).
"""

from __future__ import annotations

import re
from pathlib import Path

REPOSITORY = "https://github.com/distilnb/distilnb"
BRANCH = "main"
CLONE_TO = "/content/distilnb"  # where the notebooks' Colab cell clones the course

_BADGE_URL = re.compile(r"https://colab\.research\.google\.com/github/[^/\s)]+/[^/\s)]+/blob/[^/\s)]+/")
_CLONE_URL = re.compile(rf"https://github\.com/[^/\s]+/[^/\s]+ {re.escape(CLONE_TO)}")


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
    """Rewrite the badges and clone addresses of the README and notebooks from REPOSITORY; return the changed files."""
    changed = []
    for path in [root / "README.md", *sorted((root / "notebooks").glob("*.ipynb"))]:
        text = path.read_text()
        new = _BADGE_URL.sub(f"https://colab.research.google.com/github/{repository_path()}/blob/{BRANCH}/", text)
        new = _CLONE_URL.sub(f"{REPOSITORY} {CLONE_TO}", new)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


if __name__ == "__main__":
    for changed_path in sync_links(Path(__file__).resolve().parent.parent):
        print("updated", changed_path)
