"""What the server lets reach git: file paths, ref names and repository URLs, validated before any write.

Plain Python. Model names follow project_files.validate_name (lower-case identifiers, 63 characters
at most); every path the portal writes stays under models/; ref names are generated here and only
here (changes/<id>-<slug>); repository URLs are local paths, file://, ssh:// (or scp-like) and
https:// — never a transport helper such as ext:: (GitPython CVE-2022-24439).
"""

from __future__ import annotations

import os
import re
import unicodedata

from ..errors import InvalidName
from ..project_files import NAME_RE

MODELS_DIR = "models"
MAIN_REF = "refs/heads/main"
CHANGE_PREFIX = "refs/heads/changes/"
MAX_PATH = 255
SEGMENT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,67}\Z")
CHANGE_REF_RE = re.compile(r"^refs/heads/changes/[1-9][0-9]{0,18}-[a-z0-9]+(?:-[a-z0-9]+)*\Z")
SHA_RE = re.compile(r"^[0-9a-f]{40}\Z")
IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")  # what dbt reads; the portal writes only NAME_RE


def is_identifier(name: str) -> bool:
    """A name dbt accepts for a model file (an adopted project may use capitals); reading only."""
    return bool(IDENTIFIER_RE.match(name))


def describe(value: object) -> str:
    """A value quoted for a message, with control characters made visible."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "...'"


# Words PostgreSQL and DuckDB reserve: a model named so breaks every unquoted query that reads it.
RESERVED = frozenset("""
all analyse analyze and any array as asc asymmetric both case cast check collate column constraint create
current_catalog current_date current_role current_time current_timestamp current_user default deferrable
desc distinct do else end except false fetch for foreign from grant group having in initially intersect
into lateral leading limit localtime localtimestamp not null offset on only or order placing primary
references returning select session_user some symmetric table then to trailing true union unique user
using variadic when where window with
""".split())


def model_name(name: object) -> str:
    """A model name the server accepts, or InvalidName saying why (the same rule as project_files)."""
    problem = _name_problem(name)
    if problem:
        raise InvalidName(problem, field="name")
    return name  # type: ignore[return-value]


def _name_problem(name: object) -> str:
    if not isinstance(name, str):
        return f"A model name must be text, not {type(name).__name__}."
    if name and not name.isascii():
        lookalikes = [c for c in name if not c.isascii()]
        shown = ", ".join(f"{c!r} ({unicodedata.name(c, 'unknown')})" for c in lookalikes[:3])
        return (f"The model name {describe(name)} contains characters that only look like plain letters: "
                f"{shown}. Type the name with plain letters a-z, digits and underscores.")
    if len(name) > 63:
        return f"The model name is {len(name)} characters long; 63 is the most a warehouse accepts."
    if not NAME_RE.match(name):
        return (f"The model name {describe(name)} is not allowed: use lower-case letters, digits and underscores, "
                "starting with a letter (for example: orders_by_month).")
    if name in RESERVED:
        return (f"The model name {name!r} is an SQL keyword, which would break queries that read it: "
                f"choose another, such as {name}_model or {name}s.")
    return ""


def model_path(path: object, *, suffixes: tuple[str, ...] = (".sql", ".yml", ".yaml")) -> str:
    """A path under models/ that the portal may write: checked segment by segment before anything is written."""
    if not isinstance(path, str) or not path:
        raise InvalidName("A file path must be non-empty text.")
    problems = []
    if "\x00" in path:
        problems.append("it contains a NUL character")
    if "\\" in path:
        problems.append("it contains a backslash")
    if not path.isascii():
        problems.append("it contains characters that are not plain ASCII")
    if path.startswith("/") or os.path.isabs(path) or re.match(r"^[A-Za-z]:", path):
        problems.append("it is an absolute path")
    if len(path) > MAX_PATH:
        problems.append(f"it is longer than {MAX_PATH} characters")
    segments = path.split("/")
    if any(s in ("", ".", "..") for s in segments):
        problems.append("it has an empty, '.' or '..' part")
    if any(s.lower().startswith(".git") for s in segments):
        problems.append("it points into git's own files")
    if any(s.startswith("-") for s in segments):
        problems.append("a part starts with '-'")
    if segments[0] != MODELS_DIR or len(segments) < 2:
        problems.append("it is not inside models/")
    if not problems and not all(SEGMENT_RE.match(s) for s in segments):
        problems.append("a part uses characters other than letters, digits, '_', '-' and '.'")
    if not problems and not path.endswith(suffixes):
        problems.append(f"it does not end in {' or '.join(suffixes)}")
    if problems:
        raise InvalidName(f"The path {describe(path)} is refused: {'; '.join(problems)}.", field="path")
    return path


def sha(value: object, what: str = "version") -> str:
    """A full 40-character commit id (lower-case hex)."""
    if not isinstance(value, str) or not SHA_RE.match(value):
        raise InvalidName(f"The {what} {describe(value)} is not a commit id (40 hexadecimal characters).")
    return value


def slug(title: str, limit: int = 40) -> str:
    """The ASCII slug of a title for a branch name: 'Fix Orders (v2)!' -> 'fix-orders-v2'."""
    ascii_title = unicodedata.normalize("NFKD", title or "").encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    text = text[:limit].rstrip("-")
    return text or "change"


def change_ref(change_id: int, title: str) -> str:
    """The branch of a change request, generated by the server: refs/heads/changes/<id>-<slug>."""
    if not isinstance(change_id, int) or change_id < 1:
        raise InvalidName(f"A change id must be a positive number, not {describe(change_id)}.")
    ref = f"{CHANGE_PREFIX}{change_id}-{slug(title)}"
    return checked_ref(ref)


def checked_ref(ref: str) -> str:
    """A ref this portal writes: main or a change branch (git check-ref-format runs on top, in the store)."""
    if ref != MAIN_REF and not CHANGE_REF_RE.match(ref or ""):
        raise InvalidName(f"The branch name {describe(ref)} is not one the portal generates.")
    if ref.endswith(".lock") or ".." in ref or "@{" in ref:
        raise InvalidName(f"The branch name {describe(ref)} is not allowed by git.")
    return ref


def short_ref(ref: str) -> str:
    """refs/heads/changes/12-x -> changes/12-x."""
    return ref.removeprefix("refs/heads/")


# --------------------------------------------------------------------------- repository URLs

_TRANSPORT_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCP_LIKE = re.compile(r"^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:(?!//)[A-Za-z0-9._~/-][^\s]*$")
ALLOWED_SCHEMES = ("file://", "ssh://", "https://")


def repository_url(url: object) -> str:
    """A repository to fetch from or push to: a local path, file://, ssh:// (or user@host:path), https://.

    Refused: transport helpers (`ext::`, `fd::`, any `name::`), git://, http://, arguments that
    start with '-' (they would be read as options: `--upload-pack=...`), and control characters.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidName("A repository location must be a path or a URL.")
    if url != url.strip() or any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidName(f"The repository location {describe(url)} contains spaces or control characters at its ends.")
    if url.startswith("-"):
        raise InvalidName(f"The repository location {describe(url)} starts with '-', which git would read as an option.")
    if _TRANSPORT_HELPER.match(url) or "::" in url:
        raise InvalidName(
            f"The repository location {describe(url)} uses a git transport helper (such as ext::), which "
            "can run commands: use a local path, file://, ssh:// or https:// instead."
        )
    lowered = url.lower()
    if "://" in url:
        if not lowered.startswith(ALLOWED_SCHEMES):
            raise InvalidName(
                f"The repository location {describe(url)} uses a protocol dmaas does not allow: "
                "use a local path, file://, ssh:// or https://."
            )
        return url
    if _SCP_LIKE.match(url) and not os.path.exists(url):
        return url  # user@host:path/repo.git, the scp-like ssh form
    return url  # a local path; the caller checks that it exists
