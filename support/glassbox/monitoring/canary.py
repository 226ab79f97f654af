"""A canary's verdict from live traffic: promote only if within the margins of stable in every segment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class CanaryVerdict:
    """A canary's outcome: ``promote`` or not, the reasons, and the live metrics it was decided on."""

    promote: bool
    reasons: list[str]
    table: pd.DataFrame       # per segment and arm: rows, error rate, p50/p99 latency (ms), log loss

    @property
    def decision(self) -> str:
        return "promote" if self.promote else "roll back"

    def __str__(self) -> str:
        return f"{self.decision}: " + ("; ".join(self.reasons) if self.reasons else "within the margins everywhere")


def canary_verdict(live: pd.DataFrame, *, max_loss_increase: float = 0.02, max_error_increase: float = 0.01,
                   max_latency_ratio: float = 1.5, latency_slack_ms: float = 5.0,
                   min_rows: int = 50, resamples: int = 1000, seed: int = 0) -> CanaryVerdict:
    """Decide a canary from live traffic: promote only if the canary is within the margins of stable in every
    segment.

    ``live`` has one row per row of traffic: ``arm`` ("stable" or "canary"), ``segment``, ``ok`` (its request
    succeeded), ``latency_ms`` (of its request) and, where outcomes are known, ``y`` (0/1) and ``p`` (the
    answering model's probability of 1). With ``p_stable``, the stable model's probability for the *same* row
    (a shadow request), the log losses are compared on the canary's own rows, which removes the luck of which
    rows each arm drew; without it, each arm's own rows are compared.

    Per segment, the canary is rolled back when its error rate exceeds stable's by more than
    ``max_error_increase``, its log loss exceeds stable's by more than ``max_loss_increase``, or its median
    latency exceeds ``max_latency_ratio`` times stable's plus ``latency_slack_ms`` (the median, not a tail
    quantile: a few dozen requests on a shared machine make p99 a coin toss; the table shows both; the slack is
    a few milliseconds, so a canary many times slower than a fast stable server is rolled back); and
    when a segment gave the canary fewer than ``min_rows`` rows (no evidence is not good evidence).

    Within the margins is not "no worse": a canary whose log loss is higher than stable's by less than
    ``max_loss_increase`` is promoted. The decision compares point estimates; with ``p_stable`` and a ``batch``
    column (the request each row came in), the table also shows the paired difference (canary minus stable, per
    row, on the canary's rows) with a 95 % bootstrap interval that resamples whole batches (``resamples``,
    seeded by ``seed``): the rows of one request are not independent draws. The interval says what the
    evidence can tell; it does not change the decision.
    """
    from sklearn.metrics import log_loss

    def loss(y, p) -> float:
        keep = np.isfinite(np.asarray(p, dtype=float)) & np.isfinite(np.asarray(y, dtype=float))
        if not keep.any():
            return float("nan")
        return float(log_loss(np.asarray(y)[keep].astype(int), np.clip(np.asarray(p, dtype=float)[keep], 1e-6,
                                                                          1 - 1e-6), labels=[0, 1]))

    labelled = {"y", "p"} <= set(live.columns)
    paired = labelled and "p_stable" in live.columns
    rows = []
    for (segment, arm), part in live.groupby(["segment", "arm"], sort=True):
        ok = part["ok"].astype(bool)
        row = {"segment": segment, "arm": arm, "rows": len(part), "error rate": 1 - ok.mean(),
               "p50 ms": float(np.percentile(part["latency_ms"], 50)),
               "p99 ms": float(np.percentile(part["latency_ms"], 99)),
               "log loss": loss(part.loc[ok, "y"], part.loc[ok, "p"]) if labelled else float("nan")}
        if paired:
            row["stable, same rows"] = loss(part.loc[ok, "y"], part.loc[ok, "p_stable"]) if arm == "canary" else \
                row["log loss"]
            if "batch" in live.columns:
                row.update(_paired_interval(part[ok], resamples, seed) if arm == "canary" else
                           {"paired diff": float("nan"), "95% low": float("nan"), "95% high": float("nan")})
        rows.append(row)
    table = pd.DataFrame(rows).set_index(["segment", "arm"]).sort_index()
    reasons = []
    for segment in sorted(set(live["segment"])):
        if (segment, "stable") not in table.index or (segment, "canary") not in table.index:
            reasons.append(f"{segment}: one arm saw no traffic")
            continue
        stable, canary = table.loc[(segment, "stable")], table.loc[(segment, "canary")]
        if canary["rows"] < min_rows:
            reasons.append(f"{segment}: too few rows to judge ({int(canary['rows'])} on the canary)")
        if canary["error rate"] > stable["error rate"] + max_error_increase:
            reasons.append(f"{segment}: error rate {canary['error rate']:.1%} vs {stable['error rate']:.1%}")
        if canary["p50 ms"] > max_latency_ratio * stable["p50 ms"] + latency_slack_ms:
            reasons.append(f"{segment}: median latency {canary['p50 ms']:.0f} ms vs {stable['p50 ms']:.0f} ms")
        if labelled:
            baseline = canary["stable, same rows"] if paired else stable["log loss"]
            if not canary["log loss"] <= baseline + max_loss_increase:
                reasons.append(f"{segment}: log loss {canary['log loss']:.3f} vs {baseline:.3f}")
    return CanaryVerdict(not reasons, reasons, table)


def _paired_interval(rows: pd.DataFrame, resamples: int, seed: int) -> dict:
    """Mean per-row log-loss difference (canary minus stable) and its 95 % interval, resampling whole batches."""
    y = rows["y"].to_numpy(dtype=float)
    p, q = (np.clip(rows[c].to_numpy(dtype=float), 1e-6, 1 - 1e-6) for c in ("p", "p_stable"))
    keep = np.isfinite(y) & np.isfinite(p) & np.isfinite(q)
    if not keep.any():
        return {"paired diff": float("nan"), "95% low": float("nan"), "95% high": float("nan")}
    y, p, q = y[keep], p[keep], q[keep]
    diff = -(y * np.log(p) + (1 - y) * np.log(1 - p)) + (y * np.log(q) + (1 - y) * np.log(1 - q))
    per_batch = pd.DataFrame({"batch": rows["batch"].to_numpy()[keep], "diff": diff}).groupby("batch")["diff"]
    sums, counts = per_batch.sum().to_numpy(), per_batch.count().to_numpy()
    drawn = np.random.default_rng(seed).integers(0, len(sums), (resamples, len(sums)))
    means = sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"paired diff": float(diff.mean()), "95% low": float(low), "95% high": float(high)}
