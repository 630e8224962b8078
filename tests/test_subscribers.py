"""Subscribers files: YAML and CSV, bad entries reported with their line and skipped, duplicates once."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.errors import SubscriberError
from publisher.subscribers import Subscriber, check_address, load_subscribers

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_entries_with_names_and_topics(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "subscribers.yaml",
        "subscribers:\n"
        "  - email: ada@example.org\n"
        "    name: Ada Lovelace\n"
        "    topics: [AI, Space]\n"
        "  - bob@example.org\n"
        "  - email: cy@example.org\n"
        "    topics: Climate\n",
    )
    result = load_subscribers(path)
    assert result.problems == []
    assert result.subscribers == [
        Subscriber("ada@example.org", "Ada Lovelace", frozenset({"AI", "Space"})),
        Subscriber("bob@example.org"),
        Subscriber("cy@example.org", "", frozenset({"Climate"})),
    ]
    assert result.subscribers[0].wants() == frozenset({"ai", "space"})
    assert result.subscribers[1].wants() is None


def test_a_plain_list_works_too(tmp_path: Path) -> None:
    path = write(tmp_path, "list.yml", "- ada@example.org\n- email: bob@example.org\n")
    assert [s.email for s in load_subscribers(path).subscribers] == [
        "ada@example.org",
        "bob@example.org",
    ]


def test_invalid_entries_are_reported_with_their_line_and_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "subscribers.yaml",
        "subscribers:\n"
        "  - ada@example.org\n"  # line 2
        "  - not-an-address\n"  # line 3
        '  - email: "eve@example.org\\nBcc: all@example.org"\n'  # line 4: header injection
        '  - email: "two@@example.org"\n'  # line 5
        "  - name: No Address\n"  # line 6
        "  - [a, list]\n"  # line 7
        "  - email: ok@example.org\n"  # line 8
        "    topic: AI\n",  # a misspelt field is reported, the entry kept
    )
    result = load_subscribers(path)
    assert [s.email for s in result.subscribers] == ["ada@example.org", "ok@example.org"]
    lines = [str(problem) for problem in result.problems]
    assert lines[0].startswith(f"{path}: line 3: invalid address 'not-an-address'")
    assert lines[1].startswith(f"{path}: line 4: invalid address")
    assert lines[2].startswith(f"{path}: line 5: invalid address 'two@@example.org'")
    assert lines[3] == f"{path}: line 6: missing 'email'"
    assert lines[4].startswith(f"{path}: line 7: expected an address")
    assert lines[5].startswith(f"{path}: line 8: unknown field 'topic'")
    assert len(lines) == 6


def test_duplicates_collapse_ignoring_case_first_wins(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "subscribers.yaml",
        "- email: Ada@Example.org\n  name: First\n- email: ada@example.ORG\n  name: Second\n- ADA@EXAMPLE.ORG\n",
    )
    result = load_subscribers(path)
    assert [(s.email, s.name) for s in result.subscribers] == [("Ada@Example.org", "First")]
    assert [str(p) for p in result.problems] == [
        f"{path}: line 3: duplicate of ada@example.ORG (line 1); skipped",
        f"{path}: line 5: duplicate of ADA@EXAMPLE.ORG (line 1); skipped",
    ]


def test_csv_with_header_and_semicolon_topics(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "subscribers.csv",
        "\ufeffEmail,Name,Topics\n"
        "ada@example.org,Ada Lovelace,AI; Space\n"
        "bob@example.org,,\n"
        "bad address,Bad,\n"
        'cy@example.org,"Cy, Jr.",Climate\n'
        "ADA@example.org,Again,\n",
    )
    result = load_subscribers(path)
    assert result.subscribers == [
        Subscriber("ada@example.org", "Ada Lovelace", frozenset({"AI", "Space"})),
        Subscriber("bob@example.org"),
        Subscriber("cy@example.org", "Cy, Jr.", frozenset({"Climate"})),
    ]
    assert [p.where for p in result.problems] == ["line 4", "line 6"]


def test_csv_needs_an_email_column(tmp_path: Path) -> None:
    path = write(tmp_path, "subscribers.csv", "address,name\nada@example.org,Ada\n")
    with pytest.raises(SubscriberError, match="'email' column"):
        load_subscribers(path)


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("missing.yaml", None, "not found"),
        ("broken.yaml", "- a: [\n", "not valid YAML"),
        ("scalar.yaml", "just text\n", "expected a list"),
        ("other.yaml", "people:\n  - a@example.org\n", "only 'subscribers:'"),
        ("subscribers.txt", "a@example.org\n", ".yaml, .yml or .csv"),
    ],
)
def test_unusable_files_raise(tmp_path: Path, name: str, text: str | None, reason: str) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(SubscriberError) as caught:
        load_subscribers(path)
    assert str(caught.value).startswith(str(path))
    assert reason in str(caught.value)


def test_an_empty_file_has_no_subscribers(tmp_path: Path) -> None:
    result = load_subscribers(write(tmp_path, "subscribers.yaml", "# nobody yet\n"))
    assert result.subscribers == [] and result.problems == []


def test_names_are_one_line_and_capped(tmp_path: Path) -> None:
    path = write(
        tmp_path, "s.yaml", f'- email: a@example.org\n  name: "Ada\\n\\rBcc: x  {"y" * 300}"\n'
    )
    (subscriber,) = load_subscribers(path).subscribers
    assert "\n" not in subscriber.name and "\r" not in subscriber.name
    assert len(subscriber.name) == 100


@pytest.mark.parametrize(
    "address",
    ["ada@example.org", "first.last+tag@mail.example.co.uk", "o'brien@example.org", "x@localhost"],
)
def test_good_addresses(address: str) -> None:
    assert check_address(address) == ""


@pytest.mark.parametrize(
    "address",
    [
        "", "plain", "@example.org", "a@", "a@@example.org", "a b@example.org", "a@exa mple.org",
        "a@example.org>", "<a@example.org>", "a@example.org\r\nBcc: x@example.org", "\"quoted\"@example.org",
        ".a@example.org", "a..b@example.org", "a@-example.org", "a@example.123", "ü@example.org",
        "a@" + "x" * 64 + ".org", "x" * 65 + "@example.org",
    ],
)  # fmt: skip
def test_bad_addresses(address: str) -> None:
    assert check_address(address)


def test_the_bundled_subscribers_file_is_clean() -> None:
    result = load_subscribers(REPO / "subscribers.yaml")
    assert result.problems == []
    assert 6 <= len(result.subscribers) <= 10
    assert all(s.email.endswith("@example.org") for s in result.subscribers)
    assert any(s.topics for s in result.subscribers) and any(
        s.topics is None for s in result.subscribers
    )
