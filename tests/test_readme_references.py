"""Every place that sends a reader to a README section names one that exists.

The CLI's help, docs/, configs/, data_manifests/ and deploy/ point at sections by name
("README, 'Your own data'"); a README rewrite that drops or renames the section leaves those
pointers dangling (it happened once: the benchmark rewrite of a32f84e dropped four sections).
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = (ROOT / "README.md", ROOT / "docs" / "README.md")
SOURCES = ("mama_monai", "docs", "configs", "data_manifests", "deploy")
REFERENCE = re.compile(r"README(?:\.md)?,\s*[\"']([A-Z][^\"'\n]{3,60})[\"']")


def _references() -> list[tuple[str, str]]:
    found = []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".md", ".yaml") and path.is_file():
                for name in REFERENCE.findall(path.read_text(encoding="utf-8")):
                    found.append((str(path.relative_to(ROOT)), name))
    return found


def _section_names() -> set[str]:
    """Headings and bold paragraph leads of the READMEs (a pointer may name either)."""
    names = set()
    for readme in READMES:
        for line in readme.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                names.add(line.lstrip("#").strip())
            names.update(re.findall(r"\*\*([^*]+?)\.?\*\*", line))
    return names


def test_the_pointers_are_found():
    assert ("mama_monai/cli.py", "Your own data") in _references()  # the scan itself works


@pytest.mark.parametrize("source,name", _references())
def test_each_pointer_names_an_existing_section(source, name):
    sections = _section_names()
    assert any(section.startswith(name) for section in sections), f"{source} points at README section {name!r}, which is gone"
