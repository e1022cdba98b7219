"""Compare two eval runs: what got better or worse, per aggregate metric and per turn."""

from __future__ import annotations

from dataclasses import dataclass

from vistarag.evals.report import LOWER_IS_BETTER, RunReport, SuiteReport, TurnReport

# Per-turn metrics compared (latency per turn is too noisy; the aggregate p50/p95 are compared).
TURN_METRICS_SKIPPED = ("latency_ms",)


@dataclass
class Change:
    """One metric or turn that differs between run A and run B."""

    suite: str
    scope: str  # "metric" or "turn"
    key: str
    before: float | str | None
    after: float | str | None
    regression: bool
    improvement: bool
    note: str = ""


def _metric_change(suite: str, scope: str, key: str, a: float | None, b: float | None,
                   tolerance: float, latency_tolerance: float | None) -> Change | None:
    if a is None or b is None:
        if a is None and b is None:
            return None
        return Change(suite, scope, key, a, b, regression=False, improvement=False,
                      note="only in one run")
    if key in LOWER_IS_BETTER or key.endswith("_ms"):
        if latency_tolerance is None or a == b:
            return None
        ratio = (b - a) / a if a else 0.0
        worse, better = ratio > latency_tolerance, ratio < -latency_tolerance
        note = f"{ratio:+.0%}"
    else:
        delta = b - a
        if abs(delta) < 1e-9:
            return None
        worse, better = delta < -tolerance, delta > tolerance
        note = f"{delta:+.3f}"
    return Change(suite, scope, key, a, b, regression=worse, improvement=better, note=note)


def _turns(suite: SuiteReport) -> dict[str, tuple[bool, TurnReport]]:
    return {f"{c.name}#{t.index}": (c.skipped is not None, t)
            for c in suite.conversations for t in c.turns}


def compare_runs(a: RunReport, b: RunReport, tolerance: float = 0.02,
                 latency_tolerance: float | None = 0.5) -> list[Change]:
    """Changes from run ``a`` to run ``b``; ``regression`` marks those beyond the tolerance.

    Rates regress when they drop by more than ``tolerance`` (absolute); latencies when they grow
    by more than ``latency_tolerance`` (relative; None ignores latency). A turn that passed in
    ``a`` and fails in ``b`` is a regression whatever its metrics.
    """
    changes: list[Change] = []
    b_suites = {s.name: s for s in b.suites}
    for sa in a.suites:
        sb = b_suites.get(sa.name)
        if sb is None:
            changes.append(Change(sa.name, "suite", sa.name, "ran", "missing", False, False,
                                  "suite not in run B"))
            continue
        for key in dict.fromkeys([*sa.aggregate, *sb.aggregate]):
            ch = _metric_change(sa.name, "metric", key, sa.aggregate.get(key),
                                sb.aggregate.get(key), tolerance, latency_tolerance)
            if ch:
                changes.append(ch)
        turns_b = _turns(sb)
        for key, (skipped_a, ta) in _turns(sa).items():
            if key not in turns_b:
                changes.append(Change(sa.name, "turn", key, "ran", "missing", False, False,
                                      "turn not in run B"))
                continue
            skipped_b, tb = turns_b[key]
            if skipped_a or skipped_b:
                continue
            if ta.passed != tb.passed:
                failed = ", ".join(c.name for c in tb.failures) if not tb.passed else ""
                changes.append(Change(
                    sa.name, "turn", key, "pass" if ta.passed else "fail",
                    "pass" if tb.passed else "fail", regression=ta.passed,
                    improvement=tb.passed, note=f"failed: {failed}" if failed else "now passes",
                ))
            for metric in dict.fromkeys([*ta.metrics, *tb.metrics]):
                if metric in TURN_METRICS_SKIPPED:
                    continue
                ch = _metric_change(sa.name, "turn", f"{key} {metric}", ta.metrics.get(metric),
                                    tb.metrics.get(metric), tolerance, None)
                if ch:
                    changes.append(ch)
    return changes
