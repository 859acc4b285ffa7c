"""The docs hold together: every page reachable from the README, every relative link and anchor
resolving, the README short, and the tables that copy the code (settings, modules, environment)
in step with it. Files only: no database.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from lookout_xero import conf
from tests.markdown import anchors, links, section
from tests.markdown import slug as github_slug

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 150


def read(path: Path) -> str:
    return path.read_text()


def relative_links(path: Path) -> list[str]:
    return [t for t in links(read(path)) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def table_rows(text: str) -> list[list[str]]:
    """The cells of every table row of `text`, headers (the row above a rule) left out."""
    rows = []
    for line in text.splitlines():
        if re.match(r"^\|[-| :]+\|$", line):
            rows.pop()  # the header
        elif line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_every_docs_page_is_linked_from_the_readme():
    targets = {unquote(t.split("#")[0]) for t in relative_links(README)}
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if f"docs/{p.name}" not in targets]
    assert missing == []
    assert "CHANGELOG.md" in targets


def test_the_readme_stays_short():
    assert len(read(README).splitlines()) <= README_MAX_LINES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / unquote(path)).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(read(file)):
            broken.append(f"{target}: no heading with that anchor in {file.name}")
    assert broken == []


def test_the_link_checker_can_fail(tmp_path):
    # A page with a dead file link and a dead anchor is caught by the same reading.
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[a](missing.md) [b](#nowhere) [c](#title)\n```\n# code\n```\n")
    assert relative_links(page) == ["missing.md", "#nowhere", "#title"]
    assert anchors(read(page)) == {"title"}
    assert github_slug("Celery: queues, `routes` and beat") == "celery-queues-routes-and-beat"


def python_literal(value) -> str:
    """A default as the table shows it: a Python literal, strings in double quotes."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def test_the_settings_table_lists_every_setting_with_its_default():
    install = read(DOCS / "install.md")
    rows = table_rows(section(install, "`LOOKOUT_XERO`"))
    table = {row[0].strip("`"): row[1] for row in rows}
    assert list(table) == list(dict.fromkeys(table))  # one row per key
    assert set(table) == set(conf.DEFAULTS)
    wrong = {
        key: (cell, f"`{python_literal(conf.DEFAULTS[key])}`")
        for key, cell in table.items()
        if cell != f"`{python_literal(conf.DEFAULTS[key])}`"
    }
    assert wrong == {}


def test_the_module_tables_name_every_module():
    architecture = read(DOCS / "architecture.md")
    named = set()
    for row in table_rows(section(architecture, "Modules")):
        named |= set(re.findall(r"`([\w.]+)`", row[0]))
    package = ROOT / "lookout_xero"
    modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    for subpackage in ("services", "templatetags"):
        modules |= {f"{subpackage}.{p.stem}" for p in (package / subpackage).glob("*.py")}
    modules -= {"services.__init__", "templatetags.__init__"}
    modules |= {"services", "management.commands", "testing.fake_xero"}
    assert sorted(modules - named) == []
    assert sorted(named - modules) == []


def environment_variables() -> set[str]:
    """Every variable `project/settings.py` reads with `env(...)`, `env.bool(...)` and so on."""
    tree = ast.parse((ROOT / "project" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        reads_env = (isinstance(func, ast.Name) and func.id == "env") or (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "env"
            and func.attr != "read_env"
        )
        if reads_env and isinstance(node.args[0], ast.Constant):
            names.add(node.args[0].value)
    return names


def test_the_environment_table_lists_every_variable_the_demo_project_reads():
    operations = read(DOCS / "operations.md")
    rows = table_rows(section(operations, "Settings"))
    documented = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row[0])}
    variables = environment_variables()
    assert "DATABASE_URL" in variables and "LOOKOUT_XERO_LOG_LEVEL" in variables
    assert sorted(variables - documented) == []
    assert sorted(documented - variables) == []
