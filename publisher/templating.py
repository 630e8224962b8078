"""The one Jinja environment: autoescaped, strict about undefined names, templates shipped with us."""

from __future__ import annotations

import functools
import logging
from importlib.resources import files
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.bccache import Bucket, FileSystemBytecodeCache

log = logging.getLogger(__name__)


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


def keep_compiled_templates(folder: Path) -> None:
    """Keep the templates compiled in ``folder`` (the build cache's folder): the next
    process loads them instead of compiling them again (about 10 ms a build)."""
    env = environment()
    kept = env.bytecode_cache
    if not isinstance(kept, _CompiledTemplates) or kept.directory != str(folder):
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            log.debug("%s: templates compiled every time (%s)", folder, exc)
            return
        env.bytecode_cache = _CompiledTemplates(str(folder))


class _CompiledTemplates(FileSystemBytecodeCache):
    """Jinja's store of compiled templates (written atomically, checked against the
    template's source when read); one that cannot be stored or read back only costs time.
    Like the state database beside it, the folder must be writable by the operator alone:
    what it holds is run."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception as exc:  # pickle and marshal raise many kinds on damaged bytes
            log.debug("%s: compiled template unreadable, compiling it (%s)", self.directory, exc)
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError as exc:
            log.debug("%s: compiled template not kept (%s)", self.directory, exc)
