"""A canary's decision from live traffic: promote, roll back, or extend it (gather more traffic, decide again)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DECISIONS = ("promote", "roll back", "extend")


@dataclass(frozen=True)
class CanaryVerdict:
    """A canary's outcome: its ``decision`` (one of :data:`DECISIONS`), the reasons for it, the live metrics it
    was decided on, and the log-loss margin it was held to."""

    decision: str
    reasons: list[str]
    table: pd.DataFrame       # per segment and arm: rows, error rate, p50/p99 latency (ms), log loss, interval
    max_loss_increase: float = 0.02

    @property
    def promote(self) -> bool:
        return self.decision == "promote"

    def __str__(self) -> str:
        return f"{self.decision}: " + ("; ".join(self.reasons) if self.reasons else "within the margins everywhere")


def loss_evidence(low: float, high: float, margin: float) -> str:
    """What a 95 % interval of the paired log-loss difference shows against ``margin``: ``"within"`` (its upper
    bound is below the margin), ``"beyond"`` (its lower bound is above it) or ``"unclear"`` (it straddles the
    margin, or is missing)."""
    if np.isfinite(high) and high < margin:
        return "within"
    if np.isfinite(low) and low > margin:
        return "beyond"
    return "unclear"


def canary_verdict(live: pd.DataFrame, *, max_loss_increase: float = 0.02, max_error_increase: float = 0.01,
                   max_latency_ratio: float = 1.5, latency_slack_ms: float = 5.0,
                   min_rows: int = 50, resamples: int = 1000, seed: int = 0) -> CanaryVerdict:
    """Decide a canary from live traffic, segment by segment: promote, roll back, or extend it.

    ``live`` has one row per row of traffic: ``arm`` ("stable" or "canary"), ``segment``, ``ok`` (its request
    succeeded), ``latency_ms`` (of its request) and, where outcomes are known, ``y`` (0/1) and ``p`` (the
    answering model's probability of 1); ``batch``, the request each row came in; ``p_stable``, the stable
    model's probability for the *same* row (a shadow request). With ``p_stable`` the table shows the paired
    log-loss difference (canary minus stable, per row, on the canary's rows); without it, the difference of the
    two arms' log losses on their own rows (``diff``), which the luck of the rows each arm drew blurs. Either way
    with a 95 % bootstrap interval that resamples whole batches (``resamples``, seeded by ``seed``): the rows of
    one request are not independent draws. Without ``batch`` each row counts as a request of its own (too narrow
    an interval if requests carried several rows).

    The decision:

    - **roll back** when some segment shows harm: the canary's error rate exceeds stable's by more than
      ``max_error_increase``, its median latency exceeds ``max_latency_ratio`` times stable's plus
      ``latency_slack_ms`` (the median: a few dozen requests make a p99 a coin toss), or the interval's lower
      bound lies above ``max_loss_increase``;
    - **extend** (keep the split, gather more traffic, decide again) when nothing shows harm but some segment
      lacks evidence: the interval straddles the margin, the canary saw fewer than ``min_rows`` rows there (its
      log loss is then not judged), or one arm saw none;
    - **promote** otherwise: the interval's upper bound is below the margin in every segment.

    Without ``y`` and ``p`` (outcomes not known yet) only the error-rate, latency and row-count gates decide.
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
    column = "paired diff" if paired else "diff"
    if labelled and "batch" not in live.columns:
        live = live.assign(batch=np.arange(len(live)))       # each row a request of its own
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
        rows.append(row)
    table = pd.DataFrame(rows).set_index(["segment", "arm"]).sort_index()
    if labelled:
        for name in (column, "95% low", "95% high"):
            table[name] = float("nan")
        for segment in sorted(set(live["segment"])):
            canary = live[(live["segment"] == segment) & (live["arm"] == "canary") & live["ok"].astype(bool)]
            stable = live[(live["segment"] == segment) & (live["arm"] == "stable") & live["ok"].astype(bool)]
            if len(canary) and (paired or len(stable)):
                table.loc[(segment, "canary"), [column, "95% low", "95% high"]] = _interval(
                    canary, None if paired else stable, resamples, seed)
    harm, unclear = [], []
    margin = max_loss_increase
    for segment in sorted(set(live["segment"])):
        if (segment, "stable") not in table.index or (segment, "canary") not in table.index:
            unclear.append(f"{segment}: one arm saw no traffic")
            continue
        stable, canary = table.loc[(segment, "stable")], table.loc[(segment, "canary")]
        if canary["error rate"] > stable["error rate"] + max_error_increase:
            harm.append(f"{segment}: error rate {canary['error rate']:.1%} vs {stable['error rate']:.1%}")
        if canary["p50 ms"] > max_latency_ratio * stable["p50 ms"] + latency_slack_ms:
            harm.append(f"{segment}: median latency {canary['p50 ms']:.0f} ms vs {stable['p50 ms']:.0f} ms")
        if canary["rows"] < min_rows:
            unclear.append(f"{segment}: too few rows to judge ({int(canary['rows'])} on the canary, "
                           f"{min_rows} needed)")
        elif labelled:
            low, high, diff = canary["95% low"], canary["95% high"], canary[column]
            evidence = loss_evidence(low, high, margin)
            figures = (f"log loss {diff:+.3f} vs stable on {'the same rows' if paired else 'its own rows'} "
                       f"(95 % interval {low:+.3f} to {high:+.3f})")
            if evidence == "beyond":
                harm.append(f"{segment}: {figures}, wholly above the {margin:g} margin")
            elif evidence == "unclear":
                unclear.append(f"{segment}: {figures}, straddling the {margin:g} margin" if np.isfinite(low)
                               else f"{segment}: no scored rows to compare")
    decision = "roll back" if harm else "extend" if unclear else "promote"
    return CanaryVerdict(decision, harm or unclear, table, max_loss_increase)


def _row_losses(rows: pd.DataFrame, column: str) -> np.ndarray:
    y, p = rows["y"].to_numpy(dtype=float), np.clip(rows[column].to_numpy(dtype=float), 1e-6, 1 - 1e-6)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def _batch_means(losses: np.ndarray, batches: np.ndarray, resamples: int, rng) -> tuple[float, np.ndarray]:
    """The mean of ``losses`` and its bootstrap replicates, resampling whole batches."""
    keep = np.isfinite(losses)
    per_batch = pd.DataFrame({"batch": batches[keep], "loss": losses[keep]}).groupby("batch")["loss"]
    sums, counts = per_batch.sum().to_numpy(), per_batch.count().to_numpy()
    drawn = rng.integers(0, len(sums), (resamples, len(sums)))
    return float(losses[keep].mean()), sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)


def _interval(canary: pd.DataFrame, stable: pd.DataFrame | None, resamples: int, seed: int) -> list[float]:
    """Log-loss difference (canary minus stable) and its 95 % interval, resampling whole batches: paired (per
    row, against ``p_stable``) when ``stable`` is None, else the two arms' own rows, each resampled apart."""
    rng = np.random.default_rng(seed)
    if stable is None:
        losses = _row_losses(canary, "p") - _row_losses(canary, "p_stable")
        if not np.isfinite(losses).any():
            return [float("nan")] * 3
        diff, replicates = _batch_means(losses, canary["batch"].to_numpy(), resamples, rng)
    else:
        ours, theirs = _row_losses(canary, "p"), _row_losses(stable, "p")
        if not (np.isfinite(ours).any() and np.isfinite(theirs).any()):
            return [float("nan")] * 3
        mean, mine = _batch_means(ours, canary["batch"].to_numpy(), resamples, rng)
        base, others = _batch_means(theirs, stable["batch"].to_numpy(), resamples, rng)
        diff, replicates = mean - base, mine - others
    low, high = np.percentile(replicates, [2.5, 97.5])
    return [diff, float(low), float(high)]
