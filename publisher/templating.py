"""The one Jinja environment: autoescaped, strict about undefined names, templates shipped with us."""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape


@functools.cache
def environment() -> Environment:
    """Templates from the ``templates/`` folder (installed as ``publisher.templates``)."""
    return Environment(
        loader=FileSystemLoader(str(template_folder())),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def template_folder() -> Path:
    """The checkout's ``templates/`` when running from source, else the installed copy."""
    checkout = Path(__file__).resolve().parent.parent / "templates"
    if (checkout / "index.html.j2").is_file():
        return checkout
    return Path(str(files("publisher.templates")))
