"""The documentation says what the code does: the command-line reference is generated from the parsers, and the
README stays a page a newcomer reads in five minutes, its links pointing at files that exist."""

import importlib.util
import re

from conftest import ROOT


def cli_docs_tool():
    """Return tools/cli_docs.py as a module."""
    spec = importlib.util.spec_from_file_location("cli_docs", ROOT / "tools" / "cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_command_line_reference_is_what_the_parsers_say():
    tool = cli_docs_tool()
    assert tool.PAGE.read_text() == tool.render(), "docs/cli.md is out of date: run python tools/cli_docs.py"
    assert str(ROOT) not in tool.render()  # the parsers' help names no folder of this machine


def test_the_reference_lists_every_command_and_flag():
    from distilnb import cli

    page = (ROOT / "docs" / "cli.md").read_text()
    for action in cli.build_parser()._subparsers._group_actions[0].choices.values():
        assert f"`distilnb {action.prog.split()[-1]}`" in page
        flags = [flag for a in action._actions for flag in a.option_strings if flag not in ("-h", "--help")]
        assert [flag for flag in flags if f"`{flag}" not in page] == []


def test_the_readme_is_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 120
    targets = [target for target in re.findall(r"\]\(([^)#\s]+)", readme) if not target.startswith("http")]
    assert [target for target in targets if not (ROOT / target).exists()] == []
    assert {"docs/cli.md", "docs/data.md", "docs/runs.md", "docs/design.md"} <= set(targets)


def test_the_docs_links_resolve():
    for page in (ROOT / "docs").glob("*.md"):
        targets = [t for t in re.findall(r"\]\(([^)#\s]+)", page.read_text()) if not t.startswith("http")]
        assert [t for t in targets if not (page.parent / t).exists()] == [], page.name
