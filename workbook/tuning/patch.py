"""Recommendations as a patch to ``params/<env>.yaml``: a reviewed diff, applied only when asked.

The file is edited with ruamel.yaml's round-trip mode, so comments, key order, quoting and the
flow or block style of each mapping survive; only the values that change differ in the diff. The
whole patched file is validated with the params schema (``infra.config.from_mapping``) before a
patch exists, and ``apply()`` writes it atomically, refusing if the file changed meanwhile.
"""
from __future__ import annotations

import difflib
import io
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from infra import config, specs
from infra.config import REPO_ROOT
from workbook.tuning.analysis import TuningError, TuningInputError

__all__ = ["FUNCTION_FIELDS", "QUEUES", "ParamsPatch", "params_patch"]

#: What a patch may change per function, and which queues' fields.
FUNCTION_FIELDS = ("memory_mb", "timeout_s", "architecture")
QUEUES = ("task_queue", "notification_queue")


def _yaml() -> YAML:
    """ruamel.yaml in round-trip mode, set up to reproduce the params files byte for byte."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096                       # never re-wrap a long line
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def display_path(path: Path) -> str:
    """``path`` relative to the repository when it is inside it (as a reader would type it)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


@dataclass
class ParamsPatch:
    """A proposed change to ``params/<env>.yaml``: the new text, its diff, and ``apply()``."""

    path: Path
    before: str
    after: str
    changes: dict[str, dict[str, Any]]

    @property
    def diff(self) -> str:
        rel = str(display_path(self.path)).lstrip("/")   # a file outside the project: a/tmp/..., as git writes it
        return "".join(difflib.unified_diff(
            self.before.splitlines(keepends=True), self.after.splitlines(keepends=True),
            fromfile=f"a/{rel}", tofile=f"b/{rel}",
        ))

    @property
    def empty(self) -> bool:
        return self.before == self.after

    def apply(self) -> Path:
        """Write the new text (already validated), atomically; refuse if the file changed since the patch."""
        current = self.path.read_text(encoding="utf-8")
        if current != self.before:
            raise TuningError(f"{display_path(self.path)} changed since the patch was made; make the patch again")
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(self.after)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return self.path


def params_patch(
    env: str,
    functions: Mapping[str, Mapping[str, Any]] | None = None,
    queues: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    params_dir: Path | None = None,
) -> ParamsPatch:
    """Patch ``params/<env>.yaml``: ``functions={key: {memory_mb, timeout_s, architecture}}``,
    ``queues={"task_queue": {"visibility_timeout_s": N}}``. ``None`` values are left alone.

    Raises ``TuningInputError`` for a field or queue a patch may not touch, and the params
    schema's ``ParamsError`` when the patched file would be invalid (nothing is written).
    """
    path = config.params_path(env, params_dir)
    if not path.is_file():
        config.load(env, params_dir)  # raises the ParamsError that names the missing file
    before = path.read_text(encoding="utf-8")
    yaml = _yaml()
    try:
        document = yaml.load(before)
    except YAMLError as exc:
        raise TuningInputError(f"{display_path(path)} is not valid YAML ({exc}); fix it before patching") from None
    changes: dict[str, dict[str, Any]] = {}
    for key, fields in (functions or {}).items():
        specs.spec(key)
        unknown = set(fields) - set(FUNCTION_FIELDS)
        if unknown:
            raise TuningInputError(f"cannot patch functions.{key}.{sorted(unknown)[0]}; "
                                   f"patchable: {', '.join(FUNCTION_FIELDS)}")
        wanted = {k: v for k, v in fields.items() if v is not None}
        if wanted:
            _set(_child(_child(document, "functions"), key), wanted)
            changes[f"functions.{key}"] = wanted
    for queue, fields in (queues or {}).items():
        if queue not in QUEUES:
            raise TuningInputError(f"unknown queue {queue!r}; use {' or '.join(QUEUES)}")
        wanted = {k: v for k, v in fields.items() if v is not None}
        if wanted:
            _set(_child(document, queue), wanted)
            changes[queue] = wanted
    out = io.StringIO()
    yaml.dump(document, out)
    after = out.getvalue() if changes else before
    config.from_mapping(YAML(typ="safe").load(after), source=f"{display_path(path)} (patched)")
    return ParamsPatch(path, before, after, changes)


def _child(mapping: CommentedMap, key: str) -> CommentedMap:
    """``mapping[key]``, created when missing, in the style (flow or block) of its siblings."""
    if mapping.get(key) is None:
        child = CommentedMap()
        siblings = [v for v in mapping.values() if isinstance(v, CommentedMap)]
        if siblings and all(s.fa.flow_style() for s in siblings):
            child.fa.set_flow_style()
        mapping[key] = child
    return mapping[key]


def _set(mapping: CommentedMap, fields: Mapping[str, Any]) -> None:
    for name, value in fields.items():
        old = mapping.get(name)
        mapping[name] = value
        if name == "visibility_timeout_s":
            _refresh_ratio_comment(mapping, name, old, value)


_RATIO = re.compile(r"(\d+)\s*x\s*([\w-]+)'s\s+(\d+)\s*s")


def _refresh_ratio_comment(mapping: CommentedMap, name: str, old: Any, new: Any) -> None:
    """Keep a ``# 6 x data-processor's 300 s`` comment true after a visibility-timeout change."""
    entry = mapping.ca.items.get(name)
    token = entry[2] if entry and len(entry) > 2 else None
    if token is None or not isinstance(new, int):
        return
    found = _RATIO.search(token.value)
    if found and new % int(found.group(1)) == 0:
        factor, function = found.group(1), found.group(2)
        token.value = token.value.replace(found.group(0), f"{factor} x {function}'s {new // int(factor)} s")
