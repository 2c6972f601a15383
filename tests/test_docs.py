"""The README documents every setting, and opens with the two commands."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.settings_catalog import all_env_names

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented():
    documented = set(re.findall(r"\b(?:ORIGIN|ENCODER|DELIVERY|EDGE)_[A-Z0-9_]+\b", README))
    missing = sorted(all_env_names() - documented)
    assert missing == []


def test_readme_documents_no_setting_that_does_not_exist():
    documented = set(re.findall(r"`((?:ORIGIN|ENCODER|DELIVERY|EDGE)_[A-Z0-9_]+)`", README))
    assert sorted(documented - all_env_names()) == []


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```")[1]
    assert "make run" in first_block and "make test" in first_block
