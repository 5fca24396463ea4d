"""What reviewers see: the queue in service-agreement order, and everything about one change.

`review_queue(user, show)` lists the changes under review (submitted, changes requested, approved and
not yet merged), each with its due time (3 working days after submission, runner.sla), age, models
touched, CI status, breaking-change warnings and whether the policy would approve it; ordered by due
time, soonest first. `show`: "all", "mine" (changes that wait on a decision and that the user may
review: not their own), or "overdue".

`review_data(user, change)` gathers one change's review page: the per-model diff, the validation of
its latest build, the CI results with failing rows, the models downstream (lineage), the data diff,
comments and verdicts, the policy's verdict and the deployments. Pages and the API both call these.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from models_service import access, changes, index, reading, review
from models_service.models import ChangeRequest, ChangeState

from . import ci, deploy, sla
from .models import CIBuild, ReviewPolicy

S = ChangeState
UNDER_REVIEW = (S.SUBMITTED, S.CHANGES_REQUESTED, S.APPROVED)
SHOWS = ("mine", "all", "overdue")


@dataclass
class QueueItem:
    change: ChangeRequest
    due: dt.datetime | None
    overdue: bool
    age: dt.timedelta | None
    models: list[str] = field(default_factory=list)
    ci_status: str = "not built"
    ci_stale: bool = False
    breaking: list[dict[str, Any]] = field(default_factory=list)
    eligible: bool | None = None  # None: not judged yet (no finished build of the head)
    policy_summary: str = ""
    sla: Any = None  # runner.sla.agreement.Item: state, used, left (working time), paused on the author


    def as_dict(self) -> dict[str, Any]:
        c = self.change
        return {
            "id": c.pk, "title": c.title, "author": c.author.get_username(), "state": c.state,
            "submitted_at": c.submitted_at, "due": self.due, "overdue": self.overdue,
            "age_hours": round(self.age.total_seconds() / 3600, 1) if self.age else None,
            "models": self.models, "ci_status": self.ci_status, "ci_stale": self.ci_stale,
            "breaking": self.breaking, "auto_approval_eligible": self.eligible,
            "policy_summary": self.policy_summary, "needs_update": c.needs_update,
            "sla": self.sla.as_dict() if self.sla else None,
        }


def _latest_builds(ids: list[int]) -> dict[int, CIBuild]:
    latest: dict[int, CIBuild] = {}
    for build in CIBuild.objects.filter(change_id__in=ids).order_by("change_id", "-created_at", "-id"):
        latest.setdefault(build.change_id, build)
    return latest


def review_queue(user: Any, show: str = "all", now: dt.datetime | None = None) -> list[QueueItem]:
    access.require(user, "change.review")
    if show not in SHOWS:
        from models_service.errors import InvalidInput

        raise InvalidInput(f"Show one of {', '.join(SHOWS)}.", field="show")
    now = now or timezone.now()
    qs = changes.visible_changes(user).filter(state__in=UNDER_REVIEW).select_related("author")
    rows = list(qs)
    builds = _latest_builds([c.pk for c in rows])
    from .models import SlaSettings
    from .sla.agreement import review_items

    clocks = {int(i.key.split(":")[1]): i for i in review_items(sla.clock(), SlaSettings.current(), now, rows)}
    items = []
    for change in rows:
        clock_item = clocks.get(change.pk)
        due = clock_item.due if clock_item else None
        overdue = bool(clock_item and clock_item.state == "breached")
        item = QueueItem(change, due, overdue, now - change.submitted_at if change.submitted_at else None)
        item.sla = clock_item
        build = builds.get(change.pk)
        if build is not None:
            item.models = list(build.modified) + [f"{d} (downstream)" for d in build.downstream]
            item.ci_status = build.status
            item.ci_stale = build.sha != change.head_sha
            item.breaking = (build.validation or {}).get("breaking", [])
            if build.policy and not item.ci_stale:
                item.eligible = bool(build.policy.get("eligible"))
                item.policy_summary = build.policy.get("summary", "")
        items.append(item)
    if show == "mine":
        items = [i for i in items if i.change.state == S.SUBMITTED and i.change.author_id != user.pk]
    elif show == "overdue":
        items = [i for i in items if i.overdue]
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    items.sort(key=lambda i: (i.due or far, i.change.pk))
    return items


def lineage(user: Any, names: list[str]) -> dict[str, list[str]]:
    """For each model, the models on main that read it, transitively (what a change could break)."""
    children = index.dependents_map(user)
    out = {}
    for name in names:
        seen, stack = set(), [name]
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        out[name] = sorted(seen)
    return out


def review_data(user: Any, change: ChangeRequest | int) -> dict[str, Any]:
    change = changes.get_change(user, change.pk if isinstance(change, ChangeRequest) else change)
    diffs = reading.change_diff(user, change)
    build = ci.latest_build(change)
    names = [d.name for d in diffs if d.status != "deleted"]
    policy = ReviewPolicy.current()
    return {
        "change": change,
        "due": sla.review_due(change.submitted_at),
        "diffs": diffs,
        "build": build,
        "build_is_current": bool(build and build.sha == change.head_sha),
        "builds": list(CIBuild.objects.filter(change=change).order_by("-created_at", "-id")[:10]),
        "validation": (build.validation if build else {}) or {"errors": [], "breaking": []},
        "lineage": lineage(user, names),
        "comments": review.comments_of(change),
        "reviews": review.reviews_of(change),
        "policy": build.policy if build and build.policy else None,
        "policy_settings": policy,
        "deployment": deploy.latest_deployment(change),
        "can_review": access.can(user, "change.review", change) and change.state in (S.SUBMITTED, S.APPROVED),
        "can_comment": access.can(user, "change.comment"),
        "is_author": change.author_id == user.pk,
    }
