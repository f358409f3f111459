"""The documents point at what is in the repository, and their Python still compiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", ROOT / "EVENTS.md", ROOT / "cluster" / "README.md"]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
PATH_IN_CODE = re.compile(r"`((?:events|registry|cli|tests|benchmarks|examples|cluster)/[\w./-]+)`")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_paths_name_files_that_exist(document: Path) -> None:
    text = document.read_text()
    targets = [t for t in LINK.findall(text) if "://" not in t]
    targets += PATH_IN_CODE.findall(text)
    missing = [t for t in targets if not (document.parent / t).exists() and not (ROOT / t).exists()]
    assert missing == []
    assert "notes/" not in text  # the team's notes are not part of the repository


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_examples_compile(document: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", document.read_text(), re.S)
    for index, block in enumerate(blocks):
        compile(block, f"{document.name} python block {index + 1}", "exec")
