"""Strict readers for settings that come from the environment.

Each helper returns the default when the variable is unset or empty (compose files often write
`NAME=` for "not set"), and raises ImproperlyConfigured on a value it cannot read: a typo in
production must stop the process at start, not change its behaviour silently.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use 1/0, true/false, yes/no or on/off.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; blanks between commas are dropped."""
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_secret(name: str) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE (Docker and Kubernetes secrets).

    Setting both is refused: which one wins would be a guess.
    """
    value = _raw(name)
    file_name = _raw(f"{name}_FILE")
    if value is not None and file_name is not None:
        raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both.")
    if file_name is None:
        return value
    try:
        secret = Path(file_name).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc.strerror}.") from None
    if not secret:
        raise ImproperlyConfigured(f"{name}_FILE={file_name!r} is empty.")
    return secret


# Django's own deploy check (security.W009) asks for the same length and variety.
SECRET_KEY_MIN_LENGTH = 50
_PLACEHOLDERS = ("django-insecure-", "change-me", "changeme")


def secret_key_problem(key: str | None) -> str | None:
    """Why `key` must not sign sessions in production, or None when it is good enough."""
    if key is None:
        return "is not set"
    if any(marker in key.lower() for marker in _PLACEHOLDERS):
        return "is a placeholder or default value"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"is shorter than {SECRET_KEY_MIN_LENGTH} characters"
    if len(set(key)) < 5:
        return "has fewer than 5 different characters"
    return None
