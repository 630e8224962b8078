"""The command line: help everywhere, exit codes 0 / 1 / 2, output on the right stream."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from conftest import REPO, SUMMARY_PATTERN, WriteArticle, run_module

from publisher import __version__
from publisher.cli import main

Cli = Callable[..., Result]


def all_commands() -> list[list[str]]:
    """Every command path, the group itself included."""
    paths: list[list[str]] = [[]]
    stack: list[tuple[list[str], click.Command]] = [([], main)]
    while stack:
        prefix, command = stack.pop()
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                paths.append([*prefix, name])
                stack.append(([*prefix, name], sub))
    return paths


def test_the_expected_commands_exist() -> None:
    assert {"build", "check"} <= set(main.commands)


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p) or "publisher")
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_has_help(path: list[str], flag: str) -> None:
    result = CliRunner().invoke(main, [*path, flag])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert command.help and command.help.split("\n")[0].strip() in " ".join(result.output.split())


@pytest.mark.parametrize("command", ["build", "check"])
def test_help_lists_the_documented_options(command: str) -> None:
    output = CliRunner().invoke(main, [command, "--help"]).output
    expected = {"build": ["--config", "--seeds", "--out"], "check": ["--config", "--seeds"]}[
        command
    ]
    for option in expected:
        assert option in output


def test_python_dash_m_has_help_too(tmp_path: Path) -> None:
    for args in (["--help"], ["build", "--help"], ["check", "--help"]):
        child = run_module(*args, cwd=tmp_path)
        assert child.returncode == 0, child.stderr
        assert "Usage:" in child.stdout


def test_the_console_script_is_installed(tmp_path: Path) -> None:
    script = shutil.which("publisher") or str(Path(sys.executable).parent / "publisher")
    if not Path(script).exists():
        pytest.skip("the publisher console script is not installed in this environment")
    child = subprocess.run(
        [script, "--version"], capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False
    )
    assert child.returncode == 0
    assert __version__ in child.stdout


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_usage_errors_exit_2(cli: Cli, tmp_path: Path) -> None:
    assert CliRunner().invoke(main, ["no-such-command"]).exit_code == 2
    assert CliRunner().invoke(main, ["build", "--no-such-option"]).exit_code == 2
    assert CliRunner().invoke(main, ["build", "--seeds"]).exit_code == 2


def test_a_missing_seeds_folder_exits_2(cli: Cli, tmp_path: Path) -> None:
    result = cli("build", "--seeds", tmp_path / "absent", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "absent" in result.stderr


def test_build_exits_0_and_prints_one_summary_line(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path, out_dir: Path
) -> None:
    write_article()
    result = cli("build", "--seeds", seeds_dir, "--out", out_dir)
    assert result.exit_code == 0
    assert result.stderr == ""
    (line,) = result.stdout.splitlines()
    assert re.fullmatch(SUMMARY_PATTERN, line)


def test_build_with_rejected_documents_still_exits_0(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path, out_dir: Path
) -> None:
    write_article()
    bad = write_article(quality="high")
    result = cli("build", "--seeds", seeds_dir, "--out", out_dir)
    assert result.exit_code == 0
    assert result.stderr == f"{bad}: quality: expected a number, got text 'high'\n"
    assert re.fullmatch(SUMMARY_PATTERN, result.stdout.strip())


def test_check_exits_0_when_all_is_well(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path
) -> None:
    write_article()
    write_article(published=False)
    result = cli("check", "--seeds", seeds_dir)
    assert result.exit_code == 0
    assert result.stderr == ""
    assert (
        result.stdout.strip()
        == "2 documents: 2 usable, 0 rejected, 0 warnings; 1 would be published"
    )


def test_check_writes_nothing(
    cli: Cli,
    write_article: WriteArticle,
    seeds_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_article()
    monkeypatch.chdir(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    assert cli("check", "--seeds", seeds_dir).exit_code == 0
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_check_exits_1_with_problems(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path
) -> None:
    write_article()
    bad = write_article(webUrl="javascript:alert(1)", originalUrl=None)
    result = cli("check", "--seeds", seeds_dir)
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"{bad}: webUrl: unsafe URL scheme 'javascript' (only http and https are published)\n"
    )
    assert (
        result.stdout.strip()
        == "2 documents: 1 usable, 1 rejected, 0 warnings; 1 would be published"
    )


def test_check_reports_a_config_problem_naming_the_key(
    cli: Cli, seeds_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "publisher.yaml"
    config.write_text("feeds:\n  max_items: none\n")
    result = cli("check", "--config", config, "--seeds", seeds_dir)
    assert result.exit_code == 1
    assert "feeds.max_items" in result.stderr


def test_check_on_the_bundled_seeds_is_clean(tmp_path: Path) -> None:
    child = run_module("check", cwd=REPO)
    assert child.returncode == 0, child.stderr
    assert child.stderr == ""
    assert re.fullmatch(
        r"\d+ documents: \d+ usable, 0 rejected, 0 warnings; \d+ would be published",
        child.stdout.strip(),
    )


def test_a_write_failure_exits_1(
    cli: Cli, write_article: WriteArticle, seeds_dir: Path, tmp_path: Path
) -> None:
    write_article()
    (tmp_path / "file").write_text("x")
    result = cli("build", "--seeds", seeds_dir, "--out", tmp_path / "file" / "out")
    assert result.exit_code == 1
    assert result.stderr.strip() and "Traceback" not in result.stderr
