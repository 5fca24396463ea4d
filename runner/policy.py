"""The auto-approval policy: approve a change without a person when its CI build shows it is safe.

`evaluate(build, policy)` checks each rule of the ReviewPolicy row and says, per rule, whether it is
on, whether it was met and the figure that decided it. `judge(build)` records that verdict on the
build and, when every rule that is on was met, the policy is on and the build is of the change's
head, approves the change as "policy" (models_service.review.approve_by_policy) with the rules and
figures as its reason. A change that misses a rule waits for a person, and the verdict says which.
"""

from __future__ import annotations

from typing import Any

from models_service import review
from models_service.models import ChangeRequest, ChangeState

from .models import BuildStatus, CIBuild, ReviewPolicy


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def evaluate(build: CIBuild, policy: ReviewPolicy) -> dict[str, Any]:
    nodes = build.nodes or []
    models = [n for n in nodes if n["kind"] != "test"]
    tests = [n for n in nodes if n["kind"] == "test"]
    failed_models = [n["name"] for n in models if n["status"] != "success"]
    failed_tests = [n["name"] for n in tests if n.get("severity", "error") != "warn"
                    and n["status"] in ("fail", "error", "skipped")]
    passed_tests = sum(1 for n in tests if n["status"] in ("pass", "warn"))
    validation = build.validation or {}
    errors, breaking = validation.get("errors", []), validation.get("breaking", [])
    seconds = float(build.seconds or 0)
    built = build.status in (BuildStatus.PASSED, BuildStatus.FAILED)
    rules = [
        ("build_passed", policy.require_build_passed, built and not failed_models,
         "The CI build succeeded",
         f"{len(models)} model(s) built" if built and not failed_models else
         (f"not built: {', '.join(failed_models)}" if failed_models else build.message or "the build did not run")),
        ("tests_passed", policy.require_tests_passed, built and not failed_tests,
         "Every error-severity test passed",
         f"{passed_tests} test(s) passed" if not failed_tests else f"failing: {', '.join(failed_tests)}"),
        ("fast_build", policy.require_fast_build, built and seconds < policy.max_build_seconds,
         f"The build took under {_minutes(policy.max_build_seconds)}",
         f"built in {seconds:.1f} s"),
        ("no_breaking_change", policy.require_no_breaking_change, not breaking,
         "Nothing downstream breaks",
         "no breaking change" if not breaking else "; ".join(f"{b['model']}: {b['message']}" for b in breaking)),
        ("no_validation_error", policy.require_no_validation_error, not errors,
         "No validation error",
         "no validation error" if not errors else "; ".join(
             f"{e['model']} line {e['line']}: {e['message']}" for e in errors)),
    ]
    out = [{"rule": key, "label": label, "on": on, "met": bool(met), "figure": figure}
           for key, on, met, label, figure in rules]
    missed = [r for r in out if r["on"] and not r["met"]]
    eligible = policy.enabled and not missed
    if not policy.enabled:
        summary = "Auto-approval is switched off: a reviewer decides."
    elif missed:
        summary = "Waits for a reviewer. Not met: " + "; ".join(f"{r['label']} ({r['figure']})" for r in missed) + "."
    else:
        summary = "Approved by policy: " + "; ".join(r["figure"] for r in out if r["on"]) + "."
    return {"enabled": policy.enabled, "eligible": eligible, "rules": out, "summary": summary,
            "max_build_seconds": policy.max_build_seconds}


def judge(build: CIBuild) -> dict[str, Any]:
    """Record the policy's verdict on a finished build, and approve when it says so."""
    policy = ReviewPolicy.current()
    verdict = evaluate(build, policy)
    change = ChangeRequest.objects.get(pk=build.change_id)
    verdict["approved"] = False
    finished = build.status in (BuildStatus.PASSED, BuildStatus.FAILED)
    if verdict["eligible"] and finished and change.state == ChangeState.SUBMITTED:
        rule = "auto-approval: " + ", ".join(r["rule"] for r in verdict["rules"] if r["on"])
        figures = {r["rule"]: r["figure"] for r in verdict["rules"] if r["on"]}
        verdict["approved"] = review.approve_by_policy(change, build.sha, rule, figures) is not None
    CIBuild.objects.filter(pk=build.pk).update(policy=verdict)
    build.policy = verdict
    return verdict


EDITABLE = ("enabled", "max_build_seconds", "require_build_passed", "require_tests_passed", "require_fast_build",
            "require_no_breaking_change", "require_no_validation_error", "merge_on_approval")


def update_policy(user: Any, changes: dict[str, Any], *, source: str = "page") -> ReviewPolicy:
    """Platform admins change the policy's rules; each change is audited."""
    from models_service import access, audit
    from models_service.errors import InvalidInput

    access.require(user, "policy.manage")
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"Unknown setting {', '.join(unknown)}; use {', '.join(EDITABLE)}.", field=unknown[0])
    policy = ReviewPolicy.current()
    before = {k: getattr(policy, k) for k in changes}
    for key, value in changes.items():
        if key == "max_build_seconds":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 24 * 3600:
                raise InvalidInput("max_build_seconds is a whole number of seconds from 1 to 86400.", field=key)
        elif not isinstance(value, bool):
            raise InvalidInput(f"{key} is true or false.", field=key)
        setattr(policy, key, value)
    policy.save()
    audit.record(user, "policy.update", policy, source=source, details={"before": before, "after": changes})
    return policy
