"""The documentation stands on its own and stays in step with the code: the README's
configuration table names every setting, and docs/ points only at files in the repository."""

from __future__ import annotations

import re
from pathlib import Path

from batchyard.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TABLE_ROW = re.compile(r"^\| `(BATCHYARD_[A-Z0-9_]+)` \|", re.MULTILINE)
#: A Markdown link's target, or a relative path written as code (`../x/y.md`).
LINK = re.compile(r"\]\(([^)\s#]+)[^)]*\)|`(\.\./[^`\s]+)`")


def configuration_table() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return TABLE_ROW.findall(section)


def test_configuration_table_lists_every_setting():
    settings = {f"BATCHYARD_{name.upper()}" for name in Settings.model_fields}
    listed = configuration_table()
    assert sorted(settings - set(listed)) == []
    assert len(listed) == len(set(listed))


def test_configuration_table_lists_only_variables_the_code_reads():
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "batchyard").rglob("*.py"))
    settings = {f"BATCHYARD_{name.upper()}" for name in Settings.model_fields}
    unknown = [v for v in configuration_table() if v not in settings and v not in source]
    assert unknown == []


def test_docs_point_only_inside_the_repository():
    for doc in DOCS:
        text = doc.read_text()
        assert "DESIGN.md" not in text, doc.name  # the contract outside the repository
        for link, code_path in LINK.findall(text):
            target = link or code_path
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            resolved = (doc.parent / target).resolve()
            assert resolved.is_relative_to(ROOT), (doc.name, target)
            assert resolved.exists(), (doc.name, target)


def test_ci_runs_exactly_the_readmes_test_command():
    quick_start = (ROOT / "README.md").read_text().split("## Quick start", 1)[1]
    command = re.search(r"^(python3 -m pip install uv && uv run .*pytest)$", quick_start, re.M)
    assert command, quick_start
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == command[1]
