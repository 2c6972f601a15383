"""The README's settings tables are the settings models, rendered (common.settings_doc).

Each variable is described once, in its model's ``Field(description=...)``; the
README blocks ``<!-- settings: NAME -->`` hold what ``python -m scripts.settings_tables``
renders from them. These tests run that checker in-process: on the real README, and
on a copy with a stale table planted in it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from common.settings_doc import (
    UndescribedSetting,
    block_names,
    problems,
    rewrite,
    settings_table,
    shown_default,
)
from scripts import settings_tables
from scripts.settings_tables import README, tables


def test_readme_tables_match_the_models(capsys):
    found = problems(README.read_text(), tables())
    assert found == [], "run: python -m scripts.settings_tables"
    assert settings_tables.main(["--check"]) == 0


def test_every_registered_table_has_one_readme_block_and_every_block_a_table():
    names = block_names(README.read_text())
    assert sorted(names) == sorted(set(names)), "a settings block appears twice"
    assert set(names) == set(tables())


@pytest.mark.parametrize("name", sorted(tables()))
def test_every_field_of_every_registered_model_is_described(name):
    # settings_table raises UndescribedSetting for a field without a description, or
    # with a computed default the README could not show.
    table = tables()[name]()
    rows = [line for line in table.splitlines()[2:] if line.startswith("| `")]
    assert rows, name
    for row in rows:
        variable, default, meaning = (cell.strip() for cell in row.strip("|").split(" | "))
        assert default and meaning, row


def test_the_tables_cover_each_parts_variables():
    from edge.settings import EdgeSettings
    from encoder.settings import EncoderSettings
    from origin.settings import OriginSettings

    rendered = "".join(render() for render in tables().values())
    for cls in (OriginSettings, EncoderSettings, EdgeSettings):
        prefix = cls.model_config["env_prefix"]
        for name in cls.model_fields:
            assert f"| `{prefix}{name.upper()}` |" in rendered, (cls.__name__, name)


@pytest.fixture
def readme_copy(tmp_path) -> Path:
    copy = tmp_path / "README.md"
    shutil.copyfile(README, copy)
    return copy


def test_the_checker_sees_a_stale_table_and_the_script_repairs_it(readme_copy, capsys):
    text = readme_copy.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `EDGE_PORT` |"))
    readme_copy.write_text(text.replace(row, row.replace("`8080`", "`8081`")))

    assert settings_tables.main(["--check", "--readme", str(readme_copy)]) == 1
    err = capsys.readouterr().err
    assert "settings block 'edge' is stale" in err and "'origin'" not in err
    assert "python -m scripts.settings_tables" in err

    assert settings_tables.main(["--readme", str(readme_copy)]) == 0
    assert readme_copy.read_text() == text
    assert settings_tables.main(["--check", "--readme", str(readme_copy)]) == 0


def test_the_checker_sees_a_missing_or_unknown_block(readme_copy, capsys):
    text = readme_copy.read_text()
    start = text.index("<!-- settings: origin -->")
    end = text.index("<!-- /settings -->", start) + len("<!-- /settings -->")
    readme_copy.write_text(
        text[:start] + "<!-- settings: nosuch -->\n<!-- /settings -->" + text[end:]
    )
    assert settings_tables.main(["--readme", str(readme_copy)]) == 1  # not repairable
    err = capsys.readouterr().err
    assert "no settings block for 'origin'" in err
    assert "settings block 'nosuch' names no settings model" in err


class _Undescribed(BaseModel):
    fine: int = Field(1, description="a described setting")
    bare: int = 2


class _Computed(BaseModel):
    jobs: int = Field(default_factory=lambda: 4, description="machine-dependent")


class _Shown(BaseModel):
    jobs: int = Field(
        default_factory=lambda: 4,
        description="one per core",
        json_schema_extra={"shown_default": "cores"},
    )
    timeout_s: float = Field(10.0, description="whole seconds show as such")
    backoff_s: float = Field(0.2, description="a | in a description is escaped")


def test_an_undescribed_field_or_an_unshown_computed_default_raises():
    with pytest.raises(UndescribedSetting, match="X_BARE has no description"):
        settings_table(_Undescribed, "X_")
    with pytest.raises(UndescribedSetting, match="X_JOBS has a computed default"):
        settings_table(_Computed, "X_")


def test_table_rendering():
    assert settings_table(_Shown, "X_").splitlines()[2:] == [
        "| `X_JOBS` | cores | one per core |",
        "| `X_TIMEOUT_S` | `10` | whole seconds show as such |",
        "| `X_BACKOFF_S` | `0.2` | a \\| in a description is escaped |",
    ]
    assert shown_default(_Shown.model_fields["backoff_s"]) == "`0.2`"


def test_rewrite_replaces_only_block_bodies():
    text = "intro\n<!-- settings: x -->\nold\n<!-- /settings -->\noutro\n"
    assert rewrite(text, {"x": lambda: "new\n"}) == (
        "intro\n<!-- settings: x -->\nnew\n<!-- /settings -->\noutro\n"
    )
    with pytest.raises(KeyError):
        rewrite(text, {})


# Files outside the packages that name settings: the `make run` stack, the containers.
NAMING_FILES = (
    "scripts/run_stack.py",
    "Makefile",
    "docker/compose.yaml",
    "docker/.env.example",
    "docker/Dockerfile",
    "encoder/README.md",
    "edge/README.md",
)


@pytest.mark.parametrize("path", NAMING_FILES)
def test_the_stack_and_container_files_name_only_real_settings(path):
    from tests.support.settings_catalog import all_env_names

    text = (README.parent / path).read_text()
    named = set(re.findall(r"\b(?:ORIGIN|ENCODER|DELIVERY|EDGE)_[A-Z0-9_]*[A-Z0-9]\b", text))
    assert sorted(named - all_env_names()) == []
