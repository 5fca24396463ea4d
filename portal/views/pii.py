"""The PII review page: columns the scans found to hold personal data, for legal to confirm or reject.

Legal (`pii.classify`) decides, with a note; platform admins (`pii.view`) see the same list read-only
and, like legal, may ask for a model to be scanned again. The page shows evidence as counts and
pattern names only: no sampled value is ever kept, so none can be shown.
Views stay thin: `@page` checks the role, one function of runner.observe.pii does the work, and a
ServiceError becomes a message, never a 500.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from models_service import access
from models_service.errors import NotFound, ServiceError
from portal.views.decorators import page
from runner.models import PiiStatus, PiiTag
from runner.observe import pii

PAGE_SIZE = 100
TABS = {
    "suggested": "To review",
    "confirmed": "Confirmed",
    "rejected": "Rejected",
    "all": "All",
}
EMPTY = {
    "suggested": "Nothing to review: every column the scans found has been decided.",
    "confirmed": "No column is confirmed to hold personal data yet.",
    "rejected": "No tag has been rejected.",
    "all": "No scan has found personal data yet.",
}


def evidence_words(evidence: dict[str, Any]) -> list[str]:
    """The evidence in plain words: what the name matched, how many sampled values matched what."""
    words = []
    name = evidence.get("name") or {}
    if name:
        words.append(f"name matches “{name.get('rule', '')}” ({name.get('category', '')})")
    values = evidence.get("values") or {}
    sampled = values.get("sampled", 0)
    for category, count in sorted((values.get("matched") or {}).items(), key=lambda kv: -kv[1]):
        words.append(f"{count} of {sampled} sampled values look like {category}")
    if sampled and not values.get("matched"):
        words.append(f"none of {sampled} sampled values matched a pattern")
    if values.get("unlike_name"):
        words.append("the values do not look like the name says")
    if evidence.get("gone"):
        words.append("the column is no longer in the model")
    return words


MODEL_FILTER = re.compile(r"[A-Za-z0-9_.]*")


def _filters(request: HttpRequest) -> dict[str, str]:
    status = request.GET.get("status") if request.GET.get("status") in TABS else "suggested"
    category = request.GET.get("category", "")
    model = request.GET.get("model", "").strip()[:200]
    # a model name is an identifier (a source's may hold a dot); anything else matches no tag anyway
    model = model if MODEL_FILTER.fullmatch(model) else ""
    return {"status": status, "model": model,
            "category": category if category in pii.NAME_RULES else ""}


@page("pii.view")
def pii_review(request: HttpRequest) -> HttpResponse:
    wanted = _filters(request)
    listing = pii.list_tags(request.user, model=wanted["model"], category=wanted["category"],
                            status="" if wanted["status"] == "all" else wanted["status"])
    base = PiiTag.objects.filter(model=wanted["model"]) if wanted["model"] else PiiTag.objects.all()
    counts = base.aggregate(all=Count("pk"), **{s: Count("pk", filter=Q(status=s)) for s in PiiStatus.values})
    paged = Paginator(listing, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"tag": tag, "evidence": evidence_words(tag.evidence or {}), "percent": round(tag.confidence * 100)}
            for tag in paged]
    tabs = [{"key": key, "label": label, "count": counts[key], "current": key == wanted["status"]}
            for key, label in TABS.items()]
    context = {
        "rows": rows, "page_obj": paged, "tabs": tabs, "wanted": wanted, "empty": EMPTY[wanted["status"]],
        "categories": list(pii.NAME_RULES), "may_classify": access.can(request.user, "pii.classify"),
    }
    return render(request, "pii/review.html", context)


def _back(request: HttpRequest) -> HttpResponse:
    """To the list the form was sent from (its filters kept), never to another site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()) \
            and target.startswith("/pii/"):
        return redirect(target)
    return redirect("pii")


def _act(request: HttpRequest, act: Any, done: str) -> HttpResponse:
    try:
        act()
    except NotFound as exc:
        raise Http404(exc.message) from None
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return _back(request)


@page("pii.classify", methods=("POST",))
def pii_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    note = request.POST.get("note", "")
    return _act(request, lambda: pii.decide_tag(request.user, pk, PiiStatus.CONFIRMED, note, source="page"),
                "Confirmed: the column is masked for people without the PII permission.")


@page("pii.classify", methods=("POST",))
def pii_reject(request: HttpRequest, pk: int) -> HttpResponse:
    note = request.POST.get("note", "")
    return _act(request, lambda: pii.decide_tag(request.user, pk, PiiStatus.REJECTED, note, source="page"),
                "Rejected: the column is not masked, and later scans keep it so.")


@page("pii.view", methods=("POST",))
def pii_scan(request: HttpRequest, name: str) -> HttpResponse:
    return _act(request, lambda: pii.request_scan(request.user, name, source="page"),
                f"A scan of {name} is queued: its findings appear here when a worker has run it.")
