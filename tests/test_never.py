"""docs/never.md names the test that holds each promise: every named test must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_REF = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def test_every_promise_names_tests_that_exist() -> None:
    text = (ROOT / "docs" / "never.md").read_text(encoding="utf-8")
    refs = _REF.findall(text)
    assert len(refs) >= 20, "docs/never.md should name the tests behind each promise"
    missing = []
    for file, name in refs:
        path = ROOT / file
        if not path.is_file():
            missing.append(file)
        elif name and not re.search(rf"^(async )?def {name}\(", path.read_text(encoding="utf-8"), re.M):
            missing.append(f"{file}::{name}")
    assert not missing, f"docs/never.md names tests that do not exist: {missing}"


def test_every_heading_promises_never() -> None:
    text = (ROOT / "docs" / "never.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings and all(h.startswith("It never ") for h in headings), headings
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        assert _REF.search(section), f"a promise without a test: {section.splitlines()[0]}"
