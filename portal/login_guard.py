"""Make the login lockout hold when guesses arrive in parallel.

django-axes decides from failures already recorded: it reads the count, then the password is
checked, then the failure is written. Fifty guesses sent at once all read a count below the limit
before the first failure is written, so all fifty passwords get tried: the race that DRF's
throttles have too (DRF #8127). The guard closes it. Before the password is checked, each attempt
reserves one of the AXES_FAILURE_LIMIT attempts of its username with a compare-and-set UPDATE
(`WHERE attempts < limit`), which SQLite and PostgreSQL both apply one at a time to the row; an
attempt that finds none left is refused exactly as an axes lockout is. A successful login gives the
attempts back (as axes forgets failures on success), and the count starts again once the last
attempt is older than the cool-off, as axes' does.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from portal.models import LoginGuard


def reserve_attempt(username: str) -> bool:
    """Take one login attempt for `username`; False when the limit is used up (locked out)."""
    now = timezone.now()
    LoginGuard.objects.get_or_create(username=username)
    # Attempts older than the cool-off no longer count. Two requests may both get here; the
    # second finds last_attempt_at already fresh and resets nothing.
    LoginGuard.objects.filter(username=username, last_attempt_at__lt=now - settings.AXES_COOLOFF_TIME).update(
        attempts=0
    )
    reserved = LoginGuard.objects.filter(username=username, attempts__lt=settings.AXES_FAILURE_LIMIT).update(
        attempts=F("attempts") + 1, last_attempt_at=now
    )
    return reserved == 1


def forget_attempts(sender: Any = None, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """After a successful login (the `user_logged_in` signal) the user starts with a full count."""
    if user is not None:
        LoginGuard.objects.filter(username=user.get_username()).delete()


def reset(username: str) -> None:
    """Lift a lockout by hand (tests, and `axes_reset_username` is the operator's way for axes)."""
    LoginGuard.objects.filter(username=username).delete()
