"""The auto-approval policy's rules, each on and off (issue 6, items 4 and 7)."""

from __future__ import annotations

import pytest

from runner.models import BuildStatus, CIBuild, ReviewPolicy
from runner.policy import evaluate

GOOD_NODES = [
    {"name": "orders", "kind": "model", "status": "success"},
    {"name": "unique_orders_id", "kind": "test", "severity": "error", "status": "pass"},
    {"name": "accepted_values_orders_status", "kind": "test", "severity": "warn", "status": "warn"},
]


def build(**fields) -> CIBuild:
    values = {"status": BuildStatus.PASSED, "nodes": GOOD_NODES, "seconds": 12.0,
              "validation": {"errors": [], "breaking": []}, "sha": "a" * 40}
    values.update(fields)
    return CIBuild(**values)


# rule -> a build that misses exactly that rule
MISSES = {
    "build_passed": build(status=BuildStatus.FAILED, nodes=[dict(GOOD_NODES[0], status="error"), *GOOD_NODES[1:]]),
    "tests_passed": build(status=BuildStatus.FAILED, nodes=[GOOD_NODES[0], dict(GOOD_NODES[1], status="fail"),
                                                            GOOD_NODES[2]]),
    "fast_build": build(seconds=15 * 60 + 1),
    "no_breaking_change": build(validation={"errors": [], "breaking": [
        {"model": "orders", "line": 1, "column": 1, "code": "breaking_change", "message": "drops id"}]}),
    "no_validation_error": build(validation={"breaking": [], "errors": [
        {"model": "orders", "line": 3, "column": 1, "code": "syntax", "message": "bad"}]}),
}
SWITCH = {"build_passed": "require_build_passed", "tests_passed": "require_tests_passed",
          "fast_build": "require_fast_build", "no_breaking_change": "require_no_breaking_change",
          "no_validation_error": "require_no_validation_error"}


def test_a_build_meeting_every_rule_is_eligible_with_its_figures():
    verdict = evaluate(build(), ReviewPolicy())
    assert verdict["eligible"]
    figures = {r["rule"]: r["figure"] for r in verdict["rules"]}
    assert figures["fast_build"] == "built in 12.0 s" and figures["tests_passed"] == "2 test(s) passed"
    assert verdict["summary"].startswith("Approved by policy")


@pytest.mark.parametrize("rule", sorted(MISSES))
def test_each_rule_holds_a_change_back_when_on_and_not_when_off(rule):
    on = evaluate(MISSES[rule], ReviewPolicy())
    assert not on["eligible"]
    missed = [r for r in on["rules"] if r["on"] and not r["met"]]
    assert [r["rule"] for r in missed] == [rule]
    assert missed[0]["label"] in on["summary"]
    off = evaluate(MISSES[rule], ReviewPolicy(**{SWITCH[rule]: False}))
    assert off["eligible"], off["summary"]


def test_a_warning_test_does_not_hold_a_change_back():
    verdict = evaluate(build(), ReviewPolicy())
    assert next(r for r in verdict["rules"] if r["rule"] == "tests_passed")["met"]


def test_the_time_limit_is_the_admins_to_set():
    assert not evaluate(build(seconds=90), ReviewPolicy(max_build_seconds=60))["eligible"]
    assert evaluate(build(seconds=90), ReviewPolicy(max_build_seconds=120))["eligible"]


def test_switched_off_nothing_is_eligible():
    verdict = evaluate(build(), ReviewPolicy(enabled=False))
    assert not verdict["eligible"] and "switched off" in verdict["summary"]


def test_a_build_that_could_not_run_is_never_eligible():
    assert not evaluate(build(status=BuildStatus.ERROR, nodes=[], message="no warehouse"), ReviewPolicy())["eligible"]
