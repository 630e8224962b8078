"""Settings: built-in defaults, one checked load, errors naming the key (exit 2 at the CLI)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from conftest import REPO, WriteArticle

from publisher.config import Config, load_config, parse_config
from publisher.errors import ConfigError

Cli = Callable[..., Result]


def keys_of(config: Config) -> list[str]:
    """Every dotted setting name, ``section.name``."""
    keys = []
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if dataclasses.is_dataclass(value):
            keys += [f"{section.name}.{spec.name}" for spec in dataclasses.fields(value)]
    return keys


def test_defaults_without_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert config == Config()
    assert config.selection.min_quality == 50
    assert config.feeds.max_items == 50
    assert config.site.url.startswith(("http://", "https://")) and config.site.url.endswith("/")
    assert config.paths.seeds == Path("seeds") and config.paths.output == Path("feeds")


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "publisher.yaml"
    path.write_text("# nothing set\n")
    config = load_config(path)
    assert dataclasses.replace(config, source=None, paths=Config().paths) == Config()


def test_settings_are_frozen() -> None:
    config = parse_config({"selection": {"topics": {"AI": 70}}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.feeds.max_items = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.selection.topics["AI"] = 1  # type: ignore[index]


def test_values_are_read_and_converted(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "publisher.yaml"
    path.parent.mkdir()
    path.write_text(
        "site:\n  url: https://example.org/news\n  title: My feeds\n  language: en-GB\n"
        "paths:\n  seeds: ../articles\n"
        "selection:\n  min_quality: 65\n  topics:\n    Security: 80\n    Sports: 40.5\n"
        "feeds:\n  max_items: 20\n"
    )
    config = load_config(path)
    assert config.site.url == "https://example.org/news/"
    assert config.site.title == "My feeds" and config.site.language == "en-GB"
    assert config.paths.seeds == path.parent / "../articles"
    assert config.selection.min_quality == 65
    assert dict(config.selection.topics) == {"Security": 80, "Sports": 40.5}
    assert config.selection.threshold("Security") == 80
    assert config.selection.threshold("Anything else") == 65
    assert config.feeds.max_items == 20
    assert config.source == path


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("selection:\n  min_qualty: 10\n", "selection.min_qualty"),
        ("colour: blue\n", "colour"),
        ("feeds:\n  max_items: ten\n", "feeds.max_items"),
        ("feeds:\n  max_items: 0\n", "feeds.max_items"),
        ("feeds:\n  max_items: 2.5\n", "feeds.max_items"),
        ("feeds:\n  max_items: true\n", "feeds.max_items"),
        ("feeds: [1, 2]\n", "feeds"),
        ("selection:\n  min_quality: high\n", "selection.min_quality"),
        ("selection:\n  min_quality: .nan\n", "selection.min_quality"),
        ("selection:\n  topics: [AI]\n", "selection.topics"),
        ("selection:\n  topics:\n    AI: lots\n", "selection.topics.AI"),
        ("site:\n  url: example.org\n", "site.url"),
        ("site:\n  url: ftp://example.org/\n", "site.url"),
        ("site:\n  url: javascript:alert(1)\n", "site.url"),
        ("site:\n  language: en GB\n", "site.language"),
        ("site:\n  title: [a]\n", "site.title"),
        ("paths:\n  seeds: 42\n", "paths.seeds"),
        ("input:\n  max_bytes: -1\n", "input.max_bytes"),
    ],
)
def test_invalid_settings_name_their_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "publisher.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == key
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: ") and "\n" not in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("feeds:\n  max_itemz: 3\n", "feeds.max_itemz"),
        ("site:\n  url: not a url\n", "site.url"),
        ("site:\n  title: ''\n", "site.title"),
        ("site:\n  description: ''\n", "site.description"),
    ],
)
def test_invalid_config_exits_2_naming_the_key(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path, tmp_path: Path, text: str, key: str
) -> None:
    write_article()
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = cli("build", "--config", path, "--seeds", seeds_dir, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert key in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "text",
    [
        "site: [unclosed\n",
        "- just\n- a list\n",
        "site:\n  url: \x01\n",
        "when: 2026-02-30\n",
        "feeds:\n  max_items: !!int abc\n",
    ],
    ids=["not-yaml", "not-a-mapping", "control-character", "impossible-date", "bad-int-tag"],
)
def test_a_config_file_that_is_not_a_settings_mapping_exits_2(
    cli: Cli, seeds_dir: Path, tmp_path: Path, text: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = cli("build", "--config", path, "--seeds", seeds_dir, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert f"{path}: " in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_config_file_exits_2(cli: Cli, seeds_dir: Path, tmp_path: Path) -> None:
    result = cli("build", "--config", tmp_path / "nope.yaml", "--seeds", seeds_dir)
    assert result.exit_code == 2
    assert "nope.yaml" in result.stderr


def test_the_example_publisher_yaml_loads_and_documents_every_key() -> None:
    example = REPO / "publisher.yaml"
    assert example.is_file(), "the repository root must hold a commented example publisher.yaml"
    config = load_config(example)
    text = example.read_text()
    assert "#" in text
    data = yaml.safe_load(text)
    for key in keys_of(Config()):
        section, name = key.split(".", 1)
        assert name in data.get(section, {}), f"{key} is not documented in publisher.yaml"
        assert re.search(rf"^\s+{re.escape(name)}:", text, re.M)
    # Its values are the built-in defaults, apart from examples of per-topic thresholds.
    defaults = Config()
    for section in ("site", "input", "feeds"):
        assert getattr(config, section) == getattr(defaults, section)
    assert config.selection.min_quality == defaults.selection.min_quality
