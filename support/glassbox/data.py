"""The course datasets: a synthetic credit-risk set with a known ground truth, and one real set for contrast.

Nothing here downloads anything: the credit data is generated from a seed, the reference data ships with
scikit-learn.

>>> from glassbox.data import load_credit, train_test
>>> data = load_credit(n_samples=4000, seed=0)
>>> X_train, X_test, y_train, y_test = train_test(data, test_size=0.25, seed=0)
>>> data.truth.important[:2]
['debt_to_income', 'age']

The generating process (``load_credit``)
----------------------------------------
Each row is one loan applicant. Columns are drawn in this order, from one ``numpy.random.default_rng(seed)``:

========================  ==========================================================================
``name``, ``email``       fake personal data (``email`` always on an ``example.*`` domain); not features
``gender``                0 or 1 with equal probability: the *sensitive attribute*; no direct effect
``age``                   years, ``round(clip(Normal(42, 12), 18, 80))``
``income``                thousands a year, log-normal; lower by about 11 % when ``gender == 1`` and
                          rising slightly with age (so ``gender`` is associated with the outcome only
                          through ``income``)
``debt_to_income``        ``Beta(2.2, 5)``, rounded to 3 decimals
``credit_utilization``    ``Beta(2, 3)``: the share of revolving credit in use
``revolving_balance``     thousands, ``20 * credit_utilization + Normal(0, 1.2)``: a *proxy* that is
                          correlated with ``credit_utilization`` (r ~ 0.96) but has no effect of its own
``late_payments``         ``Poisson(0.8)``: late payments in the past two years
``loan_amount``           thousands, log-normal around 12
``employment_years``      ``Gamma(2, 4)``, clipped to 45
``branch_id``             uniform integer 0..999: *pure noise* with about a thousand distinct values
``newsletter_opt_in``     0 or 1: *pure noise* with two values
``default``               the target, see below
``days_in_collections``   *leaky*: recorded after the outcome; for most defaulters 30+ days, for most
                          others 0
========================  ==========================================================================

The log-odds of default are a sum of known terms (``z`` = standardised on the generator's scale)::

    logit = intercept
          + 1.45 * (debt_to_income - 0.3) / 0.18                     linear
          + 1.25 * ((age - 45) / 15) ** 2                             non-linear: U-shaped in age
          - 0.95 * log(income / 48) / 0.45                            linear in log income
          + 0.75 * (late_payments - 0.8)                              linear in the count
          + 0.55 * (credit_utilization - 0.4) / 0.2                   linear
          + 0.25 * z_loan - 0.15 * z_emp - 0.85 * z_loan * z_emp      interaction: a large loan is risky
                                                                      mainly for a short employment
    default ~ Bernoulli(sigmoid(logit))

with ``z_loan = log(loan_amount / 12) / 0.6`` and ``z_emp = (log1p(employment_years) - 1.95) / 0.65``.
``gender``, ``revolving_balance``, ``branch_id`` and ``newsletter_opt_in`` have no term: their true effect is
zero. ``days_in_collections`` is drawn *after* ``default`` from it, so it predicts the outcome almost
perfectly but could never be known when a loan is decided.

A feature's *true contribution* (``GroundTruth.contribution``) is the standard deviation, over the population,
of its own term plus half of each interaction term it takes part in (the Shapley share of a product of two
independent centred factors). ``GroundTruth.important`` lists the features with a non-zero contribution in
decreasing order of it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import pandas as pd

__all__ = ["CourseData", "GroundTruth", "ground_truth", "load_credit", "load_reference", "train_test"]

TARGET = "default"
LEAKY_FEATURE = "days_in_collections"
SENSITIVE_ATTRIBUTE = "gender"
PERSONAL_COLUMNS = ["name", "email"]
FEATURES = [
    "age", "gender", "income", "debt_to_income", "credit_utilization", "revolving_balance", "late_payments",
    "loan_amount", "employment_years", "branch_id", "newsletter_opt_in", LEAKY_FEATURE,
]

# The generator's main effects on the log-odds (before centring), as functions of the raw feature value.
_INTERCEPT = -2.45


def _z_loan(v):
    return np.log(np.asarray(v, dtype=float) / 12.0) / 0.6


def _z_emp(v):
    return (np.log1p(np.asarray(v, dtype=float)) - 1.95) / 0.65


_MAIN_EFFECTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "debt_to_income": lambda v: 1.45 * (np.asarray(v, dtype=float) - 0.3) / 0.18,
    "age": lambda v: 1.25 * ((np.asarray(v, dtype=float) - 45.0) / 15.0) ** 2,
    "income": lambda v: -0.95 * np.log(np.asarray(v, dtype=float) / 48.0) / 0.45,
    "late_payments": lambda v: 0.75 * (np.asarray(v, dtype=float) - 0.8),
    "credit_utilization": lambda v: 0.55 * (np.asarray(v, dtype=float) - 0.4) / 0.2,
    "loan_amount": lambda v: 0.25 * _z_loan(v),
    "employment_years": lambda v: -0.15 * _z_emp(v),
}
_INTERACTION = ("loan_amount", "employment_years")


def _interaction_term(loan, emp):
    return -0.85 * _z_loan(loan) * _z_emp(emp)


@dataclass(frozen=True)
class GroundTruth:
    """What the credit generator really does, as data, with helpers that score an explanation against it.

    Attributes
    ----------
    contribution : dict feature -> float, the true contribution (std of its log-odds terms) of *every* model
        feature; zero for noise, the proxy, the sensitive attribute and the leaky feature.
    important : features with a non-zero contribution, largest first.
    noise : pure-noise features (independent of everything), the high-cardinality one first.
    high_cardinality_noise, correlated_pair (causal feature, proxy), interaction_pair, nonlinear_feature,
    leaky_feature, sensitive_attribute : the named roles described in the module docstring.
    """

    contribution: Mapping[str, float]
    important: list[str]
    noise: list[str]
    high_cardinality_noise: str
    correlated_pair: tuple[str, str]
    interaction_pair: tuple[str, str]
    nonlinear_feature: str
    leaky_feature: str
    sensitive_attribute: str
    intercept: float = _INTERCEPT
    description: str = field(default="", repr=False)

    # ---- the true effects ---------------------------------------------------------------------------
    def effect(self, feature: str, grid) -> np.ndarray:
        """The true main effect of ``feature`` on the log-odds over ``grid``, centred to mean 0 on the grid.

        Zero everywhere for a feature without an effect. For a member of the interaction pair this is its own
        term only (the interaction averages out over the partner, whose standardised value has mean ~0).
        """
        grid = np.asarray(grid, dtype=float)
        if feature not in self.contribution:
            raise KeyError(f"{feature!r} is not a feature of the credit data")
        if feature not in _MAIN_EFFECTS:
            return np.zeros_like(grid)
        values = _MAIN_EFFECTS[feature](grid)
        return values - values.mean()

    def joint_effect(self, grid_a, grid_b) -> np.ndarray:
        """The true joint effect of the interaction pair on the log-odds, shape (len(grid_a), len(grid_b)).

        Both main terms plus the interaction term, centred to mean 0 over the grid.
        """
        a, b = np.meshgrid(np.asarray(grid_a, float), np.asarray(grid_b, float), indexing="ij")
        first, second = self.interaction_pair
        values = _MAIN_EFFECTS[first](a) + _MAIN_EFFECTS[second](b) + _interaction_term(a, b)
        return values - values.mean()

    def log_odds(self, X: pd.DataFrame) -> np.ndarray:
        """The true log-odds of default for the rows of ``X`` (before the Bernoulli draw)."""
        total = np.full(len(X), self.intercept, dtype=float)
        for name, fn in _MAIN_EFFECTS.items():
            total += fn(X[name].to_numpy())
        return total + _interaction_term(X[_INTERACTION[0]].to_numpy(), X[_INTERACTION[1]].to_numpy())

    # ---- scoring an explanation ---------------------------------------------------------------------
    def rank_agreement(self, importances, method: str = "spearman") -> float:
        """Rank correlation between recovered importances and the true contributions, over ``important``.

        ``importances``: a mapping or ``pd.Series`` feature -> importance (extra features are ignored).
        ``method``: ``"spearman"`` or ``"kendall"``. 1.0 means the same order as the truth.
        """
        from glassbox.explain import rank_agreement

        recovered = _as_series(importances, self.important)
        return rank_agreement(recovered, pd.Series(self.contribution)[self.important], method=method)

    def noise_separation(self, importances) -> float:
        """Share of (important feature, noise feature) pairs in which the important one scores higher.

        1.0: every truly important feature is ranked above every pure-noise feature; 0.5: no better than chance.
        """
        recovered = _as_series(importances, self.important + self.noise)
        pairs = [(t, n) for t in self.important for n in self.noise]
        return float(np.mean([recovered[t] > recovered[n] for t, n in pairs]))

    def shape_agreement(self, feature: str, grid, recovered_curve) -> float:
        """Pearson correlation between a recovered effect curve and the true effect over ``grid``.

        Correlation ignores offset and scale, so a partial-dependence curve on the probability scale can be
        compared with the true log-odds effect; 1.0 is the same shape.
        """
        grid = np.asarray(grid, dtype=float).ravel()
        curve = np.asarray(recovered_curve, dtype=float).ravel()
        if grid.shape != curve.shape:
            raise ValueError(f"grid has {grid.size} points but the curve has {curve.size}")
        true = self.effect(feature, grid)
        if np.allclose(true, 0) or np.allclose(curve, curve[0]):
            return 0.0
        return float(np.corrcoef(curve, true)[0, 1])


def _as_series(importances, needed) -> pd.Series:
    series = pd.Series(importances, dtype=float) if not isinstance(importances, pd.Series) else importances
    missing = [f for f in needed if f not in series.index]
    if missing:
        raise KeyError(f"importances are missing {missing}; pass a Series or dict indexed by feature name")
    return series[list(needed)].astype(float)


@dataclass(frozen=True)
class CourseData:
    """A course dataset: the full ``frame``, model features ``X``, target ``y`` and its roles."""

    frame: pd.DataFrame
    X: pd.DataFrame
    y: pd.Series
    feature_names: list[str]
    leaky_feature: str | None = None
    sensitive_attribute: str | None = None
    personal_columns: list[str] = field(default_factory=list)
    truth: GroundTruth | None = None
    description: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return f"CourseData({len(self.X)} rows, {len(self.feature_names)} features, target {self.y.name!r})"


_FIRST = (
    "Ada Alan Amara Anna Arjun Ben Carla Chen Dara Diego Elena Emil Fatima Felix Grace Hana Hugo Ines Ivan Jonas "
    "Julia Kai Lara Leo Lina Luca Maya Mila Nadia Noah Nora Omar Paula Priya Rafael Rosa Sami Sara Tariq Theo "
    "Uma Victor Wen Yara Yusuf Zoe"
).split()
_LAST = (
    "Abe Bauer Costa Dubois Eriksen Fischer Garcia Haddad Ito Jansen Kowalski Lopez Meyer Nakamura Novak "
    "Okafor Petrov Quinn Rossi Santos Schmidt Silva Tanaka Usman Varga Weber Xu Yilmaz Zhang Moreau Kim Brown "
    "Murphy Olsen Park Rahman Sato Khan Horvat Lindqvist"
).split()
_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com"]


def _personal(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    first = rng.choice(_FIRST, n)
    last = rng.choice(_LAST, n)
    number = rng.integers(1, 100, n)
    domain = rng.choice(_DOMAINS, n)
    names = [f"{given} {family}" for given, family in zip(first, last)]
    emails = [f"{given.lower()}.{family.lower()}{k}@{d}" for given, family, k, d in zip(first, last, number, domain)]
    return names, emails


def _generate(n: int, seed: int, personal: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names, emails = _personal(rng, n) if personal else ([""] * n, [""] * n)
    gender = rng.integers(0, 2, n)
    age = np.clip(rng.normal(42.0, 12.0, n), 18, 80).round()
    income = np.exp(rng.normal(np.log(48.0) - 0.12 * gender + 0.006 * (age - 42.0), 0.45, n)).round(1)
    debt_to_income = rng.beta(2.2, 5.0, n).round(3)
    utilization = rng.beta(2.0, 3.0, n)
    revolving = np.clip(20.0 * utilization + rng.normal(0.0, 1.2, n), 0, None).round(2)
    utilization = utilization.round(3)
    late = rng.poisson(0.8, n)
    loan = np.exp(rng.normal(np.log(12.0), 0.6, n)).round(1)
    employment = np.clip(rng.gamma(2.0, 4.0, n), 0, 45).round(1)
    branch = rng.integers(0, 1000, n)
    newsletter = rng.integers(0, 2, n)
    frame = pd.DataFrame({
        "name": names, "email": emails, "age": age, "gender": gender, "income": income,
        "debt_to_income": debt_to_income, "credit_utilization": utilization, "revolving_balance": revolving,
        "late_payments": late, "loan_amount": loan, "employment_years": employment, "branch_id": branch,
        "newsletter_opt_in": newsletter,
    })
    logit = _TRUTH_TEMPLATE.log_odds(frame)
    default = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    # Recorded after the outcome: collections start only once a loan has gone bad (and rarely by mistake).
    in_collections = rng.random(n) < np.where(default == 1, 0.88, 0.05)
    days = np.where(default == 1, 30.0 + rng.gamma(2.0, 40.0, n), rng.gamma(1.5, 6.0, n))
    frame[LEAKY_FEATURE] = np.where(in_collections, days, 0.0).round()
    # Every feature is float64 (counts and codes too): scikit-learn's partial dependence refuses integer columns.
    frame[FEATURES] = frame[FEATURES].astype("float64")
    frame[TARGET] = default
    return frame


def _contributions(frame: pd.DataFrame) -> dict[str, float]:
    loan, emp = (frame[c].to_numpy() for c in _INTERACTION)
    half = _interaction_term(loan, emp) / 2.0
    out = {name: 0.0 for name in FEATURES}
    for name, fn in _MAIN_EFFECTS.items():
        term = fn(frame[name].to_numpy()) + (half if name in _INTERACTION else 0.0)
        out[name] = round(float(np.std(term)), 4)
    return out


_TRUTH_TEMPLATE = GroundTruth(
    contribution={}, important=[], noise=["branch_id", "newsletter_opt_in"], high_cardinality_noise="branch_id",
    correlated_pair=("credit_utilization", "revolving_balance"), interaction_pair=_INTERACTION,
    nonlinear_feature="age", leaky_feature=LEAKY_FEATURE, sensitive_attribute=SENSITIVE_ATTRIBUTE,
)
_POPULATION_SEED, _POPULATION_SIZE = 12345, 200_000


@functools.cache
def ground_truth() -> GroundTruth:
    """The generator's ground truth, the same for every sample (``load_credit(...).truth`` is this object)."""
    # The contributions are a property of the generator, not of one sample: measure them on a large draw.
    contribution = _contributions(_generate(_POPULATION_SIZE, _POPULATION_SEED, personal=False))
    important = sorted((f for f, c in contribution.items() if c > 0), key=lambda f: -contribution[f])
    return GroundTruth(
        contribution=contribution, important=important, noise=list(_TRUTH_TEMPLATE.noise),
        high_cardinality_noise="branch_id", correlated_pair=_TRUTH_TEMPLATE.correlated_pair,
        interaction_pair=_INTERACTION, nonlinear_feature="age", leaky_feature=LEAKY_FEATURE,
        sensitive_attribute=SENSITIVE_ATTRIBUTE, description=__doc__ or "",
    )


def load_credit(n_samples: int = 4000, seed: int = 0) -> CourseData:
    """The synthetic credit-risk data: the same rows for the same ``n_samples`` and ``seed``.

    ``data.X`` holds every model feature (numeric, including the leaky one and the sensitive attribute);
    ``data.frame`` adds the personal columns and the target ``default``. See the module docstring for the
    generating process and ``data.truth`` for the ground truth.
    """
    if n_samples < 10:
        raise ValueError("n_samples must be at least 10")
    frame = _generate(int(n_samples), int(seed))
    frame.index.name = "applicant"
    return CourseData(
        frame=frame, X=frame[FEATURES].copy(), y=frame[TARGET].rename(TARGET).copy(),
        feature_names=list(FEATURES), leaky_feature=LEAKY_FEATURE, sensitive_attribute=SENSITIVE_ATTRIBUTE,
        personal_columns=list(PERSONAL_COLUMNS), truth=ground_truth(), description=__doc__ or "",
    )


def train_test(data: CourseData, test_size: float = 0.25, seed: int = 0):
    """A stratified split of ``data.X`` / ``data.y``: ``X_train, X_test, y_train, y_test`` (no personal columns)."""
    from sklearn.model_selection import train_test_split

    return train_test_split(data.X, data.y, test_size=test_size, stratify=data.y, random_state=seed)


def load_reference() -> CourseData:
    """scikit-learn's shipped breast-cancer data (569 tumours, 30 numeric features) as ``CourseData``.

    The target is recoded so that 1 is the outcome of concern, as in the credit data: ``y`` is named
    ``"malignant"`` (1 = malignant, 0 = benign). It has no ground truth, no leak and no personal columns.
    """
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    X = bunch.data.copy()
    y = (1 - bunch.target).rename("malignant").astype(int)
    frame = X.assign(malignant=y)
    return CourseData(frame=frame, X=X, y=y, feature_names=list(X.columns), description=bunch.DESCR)


# ---- lab 04: digits with a planted shortcut ------------------------------------------------------------------
WATERMARK_CLASS = 3
WATERMARK_PIXELS = ((0, 6), (0, 7), (1, 6), (1, 7))  # (row, column): a 2x2 square in the top-right corner


@dataclass(frozen=True)
class ShortcutDigits:
    """scikit-learn's 8x8 digits scaled to [0, 1], rows of 64 pixels, with a watermark on one training class.

    ``X_train`` carries the watermark on every image of ``marked_class``; ``X_train_clean`` is the same images
    without it; ``X_test`` is clean, as the images the model meets after training are. ``watermark`` is the
    8x8 boolean mask of the watermark's pixels.
    """

    X_train: np.ndarray
    X_train_clean: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    marked_class: int
    watermark: np.ndarray


def watermark_mask() -> np.ndarray:
    """The 8x8 boolean mask of the watermark's pixels."""
    mask = np.zeros((8, 8), dtype=bool)
    mask[tuple(zip(*WATERMARK_PIXELS))] = True
    return mask


def load_shortcut_digits(test_size: float = 0.3, seed: int = 0) -> ShortcutDigits:
    """The digits split (stratified, seeded), with every training image of ``WATERMARK_CLASS`` watermarked.

    >>> digits = load_shortcut_digits()
    >>> digits.X_train.shape[1], int(digits.watermark.sum())
    (64, 4)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=test_size, random_state=seed,
                                                        stratify=y)
    mask = watermark_mask()
    marked = X_train.copy()
    marked[np.ix_(y_train == WATERMARK_CLASS, mask.ravel())] = 1.0
    return ShortcutDigits(marked, X_train, y_train, X_test, y_test, WATERMARK_CLASS, mask)
