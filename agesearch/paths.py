"""Safe output paths: names from configs and the CLI never write outside the chosen folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def safe_name(name: str, what: str = "name") -> str:
    """Check a user-chosen name (experiment, report, file stem) used as ONE path component.

    Raises:
        ValueError: naming the problem and the fix when ``name`` is empty, has a path separator,
            ``..``, a leading dot, or characters outside ``[A-Za-z0-9._-]``.
    """
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ValueError(
            f"{what} {name!r} is not a plain name; use letters, digits, '.', '_' or '-' "
            "(no '/', '..', or leading dot)"
        )
    return name


def safe_join(base: str | os.PathLike[str], *parts: str) -> Path:
    """``base / parts`` resolved, refusing any result outside ``base`` (``..``, absolute parts,
    symlinks pointing out)."""
    root = Path(base).resolve()
    target = root.joinpath(*parts).resolve()
    if target != root and root not in target.parents:
        raise ValueError(
            f"path {os.path.join(*parts)!r} escapes the output folder {str(root)!r}; "
            "use a relative path inside it"
        )
    return target
