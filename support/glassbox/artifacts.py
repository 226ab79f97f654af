"""Safe model artifacts: skops instead of pickle, an integrity manifest, and a model card.

An artifact is a directory of three files::

    model.skops     the fitted estimator, saved with skops (a zip of JSON and arrays: loading it runs no code)
    MODEL_CARD.md   the model card, generated from the manifest
    manifest.json   format, sha256 and size of every other file, library versions, the feature schema,
                    held-out metrics (overall and by group of a sensitive attribute), the top global
                    features, intended use and known limitations

Typical use::

    from glassbox import artifacts

    path = artifacts.build_course_model()        # the course model; reused when already there (idempotent)
    art = artifacts.load(path)                    # verify, then load with an explicit list of trusted types
    art.model.predict_proba(X_test[art.feature_names])
    print(art.card)                               # the model card (Markdown)

:func:`load` (and :func:`verify`, which checks without loading) refuses with an :class:`ArtifactError` that says
what is wrong when the directory is not an artifact of this format, a file is missing, changed or unlisted, the
model holds a type outside the trusted list, or it was saved by another scikit-learn minor version. The
manifest protects the files it lists; to protect the manifest itself, pin its digest
(``load(path, manifest_sha256=...)`` or the server's ``GLASSBOX_MODEL_SHA256``), taken from a source an
attacker cannot also rewrite.

``python -m glassbox.artifacts build [DIR]`` builds the course model from a shell (the container image does).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata as _metadata
from pathlib import Path

import numpy as np

from glassbox.errors import GlassboxError

__all__ = [
    "Artifact", "ArtifactError", "COURSE_EXCLUDED", "COURSE_PARAMS", "FORMAT", "TRUSTED_TYPES",
    "build_course_model", "default_model_dir", "group_metrics", "load", "manifest_digest", "model_card", "save",
    "verify",
]

FORMAT = "glassbox-model/1"
MODEL_FILE = "model.skops"
CARD_FILE = "MODEL_CARD.md"
MANIFEST_FILE = "manifest.json"

#: Types that skops does not trust by default but that the course model legitimately holds. Nothing else is
#: loaded: trust comes from this list in the code, never from the artifact being loaded.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)
#: Estimators an artifact may contain (checked after loading, as a second line of defence).
_ESTIMATORS = ("sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",)
_LIBRARIES = ("scikit-learn", "numpy", "scipy", "skops", "shap")

COURSE_MODEL_NAME = "credit"
_COURSE_INTENDED_USE = (
    "Teaching only: the Glassbox Labs course uses this model to show interpretability, safe packaging, "
    "serving and operations. It scores synthetic loan applicants with a probability of default."
)
_COURSE_OUT_OF_SCOPE = (
    "Any decision about a real person. The data are synthetic; the model was never validated on real "
    "applicants, for fairness, or for regulatory use."
)
#: The features the course model leaves out, and why (the model card and the manifest say the same).
COURSE_EXCLUDED: dict[str, str] = {
    "days_in_collections": "leaky: recorded after the outcome (lab 03)",
    "branch_id": "pure noise: an identifier with about a thousand values, which the model overfits (labs 02, 03, 07)",
    "gender": "the sensitive attribute: not an input; kept beside the data only to evaluate the model by group",
}
#: The sensitive attribute the model card reports group metrics for.
COURSE_SENSITIVE_ATTRIBUTE = "gender"
#: The hyperparameters: the same as lab 03's model, so that the two differ only in the features they use.
COURSE_PARAMS = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 15, "early_stopping": False}
_COURSE_LIMITATIONS = [
    "Trained and evaluated on synthetic data from `glassbox.data.load_credit`; the metrics say nothing about "
    "real applicants.",
    "`gender`, the sensitive attribute, is not an input: leaving it out removes its direct use, not its "
    "influence. `income` is lower by about 11 % for `gender == 1` and is a real cause of default in this data, "
    "so it stays in and carries group information into the scores (a proxy). Read the group metrics above "
    "before any use beyond teaching: removing an attribute is not a fairness guarantee.",
    "`days_in_collections` is excluded on purpose: it is recorded after the outcome (a leak).",
    "`branch_id` (pure noise with a thousand values) is excluded: it earned attributions for real applicants "
    "that were overfitting. `newsletter_opt_in` is pure noise too; it stays in as a visible control: it "
    "has two values and a small global importance, but single applicants still get attributions for it "
    "(about a tenth of a unit of log-odds), which are overfitting, like those of the proxy `revolving_balance`.",
    "Inputs outside the training ranges in the feature schema are extrapolation: trees predict a constant "
    "there, and the server does not refuse them.",
    "Explanations are TreeSHAP values on the log-odds scale (tree-path-dependent); correlated features "
    "(`credit_utilization`, `revolving_balance`) share credit in ways that need care to read.",
]


class ArtifactError(GlassboxError):
    """An artifact that must not be loaded: not one, incomplete, changed, or holding untrusted types."""

    status = 400


@dataclass(frozen=True)
class Artifact:
    """A verified, loaded artifact: the estimator, its manifest, and where it came from."""

    model: object
    manifest: dict
    path: Path
    manifest_sha256: str

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def feature_names(self) -> list[str]:
        return [feature["name"] for feature in self.manifest["features"]]

    @property
    def card(self) -> str:
        return (self.path / CARD_FILE).read_text(encoding="utf-8")

    def __repr__(self) -> str:
        return (f"Artifact({self.name!r} v{self.version}, {self.manifest['estimator'].rsplit('.', 1)[-1]}, "
                f"{len(self.feature_names)} features, manifest sha256 {self.manifest_sha256[:12]}...)")


# -- saving ------------------------------------------------------------------------------------------------

def save(model, directory, *, X_train, X_test, y_test, name: str = "model", version: str = "1",
         data: dict | None = None, intended_use: str = "", out_of_scope: str = "",
         limitations: list[str] | None = None, groups=None, overwrite: bool = False) -> dict:
    """Write ``model`` as an artifact in ``directory`` and return its manifest.

    ``X_train`` gives the feature schema (names and ranges; a DataFrame, or an array with the model's
    ``feature_names_in_``), ``X_test``/``y_test`` the held-out metrics and the global feature importance
    (mean absolute SHAP value). ``groups`` (optional): a named ``pandas.Series`` of a sensitive attribute,
    one value per row of ``X_test``, that is not an input; the manifest and the card then report selection
    rate, true and false positive rate by group and their differences (see :func:`group_metrics`). The directory must not exist unless ``overwrite``; it is written in full next
    to its final place and then moved there, so a reader never sees half an artifact.
    """
    import skops.io as sio

    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise ArtifactError(f"{directory} exists; pass overwrite=True to replace it")
    feature_names = _feature_names(model, X_train)
    train = _as_matrix(X_train, feature_names)
    test = _as_matrix(X_test, feature_names)
    y_test = np.asarray(y_test)
    manifest = {
        "format": FORMAT,
        "name": name,
        "version": str(version),
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "estimator": _qualname(model),
        "params": _jsonable(model.get_params()),
        "target": data.get("target", "y") if data else "y",
        "classes": _jsonable(list(model.classes_)),
        "features": [
            {"name": feature, "datatype": "FP64", "min": _round(column.min()), "max": _round(column.max()),
             "mean": _round(column.mean())}
            for feature, column in zip(feature_names, train.T)
        ],
        "data": dict(data or {}),
        "metrics": _metrics(model, test, y_test),
        "group_metrics": (group_metrics(y_test, _predicted(model, test), groups, positive=model.classes_[-1])
                          if groups is not None else None),
        "global_importance": _global_importance(model, test, feature_names),
        "intended_use": intended_use,
        "out_of_scope": out_of_scope,
        "limitations": list(limitations or []),
        "libraries": {"python": platform.python_version(), **{lib: _version(lib) for lib in _LIBRARIES}},
    }
    parent = directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=parent))
    staging.chmod(0o755)  # readable by the server's own user (mkdtemp makes it private)
    try:
        sio.dump(model, staging / MODEL_FILE)
        (staging / CARD_FILE).write_text(model_card(manifest), encoding="utf-8")
        manifest["files"] = {
            file: {"sha256": _sha256(staging / file), "bytes": (staging / file).stat().st_size}
            for file in (MODEL_FILE, CARD_FILE)
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if directory.exists():
            retired = parent / f".{directory.name}-old-{os.getpid()}"
            directory.rename(retired)
            staging.rename(directory)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


# -- verifying and loading ---------------------------------------------------------------------------------

def manifest_digest(directory) -> str:
    """The sha256 of the artifact's ``manifest.json``: pin it to protect the manifest itself."""
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise ArtifactError(f"{directory} is not a model artifact: it has no {MANIFEST_FILE}")
    return _sha256(path)


def verify(directory, *, manifest_sha256: str | None = None) -> dict:
    """Check an artifact without loading its model; return its manifest or raise :class:`ArtifactError`.

    Checks: the directory holds a manifest of this format, every file it lists has the recorded size and
    sha256, no other file is present, and (when given) the manifest's own sha256 is ``manifest_sha256``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactError(f"no model artifact at {directory}: the directory does not exist")
    digest = manifest_digest(directory)
    if manifest_sha256 is not None and digest != manifest_sha256.strip().lower():
        raise ArtifactError(
            f"the manifest of {directory} has sha256 {digest[:16]}..., not the pinned {manifest_sha256[:16]}...: "
            "the artifact is not the one you expect; refusing it"
        )
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{directory / MANIFEST_FILE} is not valid JSON ({error}): refusing the artifact") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ArtifactError(f"{directory} holds an unknown artifact format {found!r}; this code reads {FORMAT!r}")
    files = manifest.get("files")
    if not isinstance(files, dict) or MODEL_FILE not in files:
        raise ArtifactError(f"the manifest of {directory} does not list {MODEL_FILE}: refusing the artifact")
    for file, record in sorted(files.items()):
        path = directory / file
        if Path(file).name != file or not path.is_file():
            raise ArtifactError(f"{file} is listed in the manifest but missing from {directory}")
        if path.stat().st_size != record.get("bytes") or _sha256(path) != record.get("sha256"):
            raise ArtifactError(
                f"{file} in {directory} does not match its sha256 in the manifest: the file was changed "
                "(tampered with or corrupted) after the artifact was written; refusing to load it"
            )
    extra = sorted(p.name for p in directory.iterdir() if p.name not in files and p.name != MANIFEST_FILE)
    if extra:
        raise ArtifactError(f"{directory} holds file(s) the manifest does not list: {', '.join(extra)}; refusing it")
    return manifest


def load(directory, *, trusted=TRUSTED_TYPES, manifest_sha256: str | None = None) -> Artifact:
    """Verify the artifact in ``directory``, then load its model with skops, trusting only ``trusted`` types.

    Raises :class:`ArtifactError` (see :func:`verify`) and also when the model file asks for a type outside
    ``trusted``, when the estimator is not one this course serves, or when it was saved with another
    scikit-learn minor version than the one installed.
    """
    import skops.io as sio

    directory = Path(directory)
    manifest = verify(directory, manifest_sha256=manifest_sha256)
    saved, here = manifest.get("libraries", {}).get("scikit-learn", "?"), _version("scikit-learn")
    if saved.split(".")[:2] != here.split(".")[:2]:
        raise ArtifactError(
            f"the model in {directory} was saved with scikit-learn {saved}, this environment has {here}: "
            "rebuild the artifact here (for the course model: build_course_model(force=True))"
        )
    model_path = directory / MODEL_FILE
    try:
        untrusted = sio.get_untrusted_types(file=model_path)
    except Exception as error:  # a file skops cannot even read
        raise ArtifactError(f"{model_path} is not a readable skops file ({type(error).__name__}: {error})") from None
    refused = sorted(set(untrusted) - set(trusted))
    if refused:
        raise ArtifactError(
            f"{model_path} contains type(s) outside the trusted list: {', '.join(refused)}. Loading them could "
            "run code from the file; refusing. Review them, and pass trusted=[...] only if you are sure."
        )
    try:
        model = sio.load(model_path, trusted=list(trusted))
    except Exception as error:
        raise ArtifactError(f"skops could not load {model_path} ({type(error).__name__}: {error})") from None
    if _qualname(model) not in _ESTIMATORS or _qualname(model) != manifest.get("estimator"):
        raise ArtifactError(
            f"{model_path} holds a {_qualname(model)}, but the manifest says {manifest.get('estimator')!r} "
            f"and this course serves {', '.join(_ESTIMATORS)}"
        )
    names = [feature["name"] for feature in manifest["features"]]
    if list(getattr(model, "feature_names_in_", names)) != names:
        raise ArtifactError(f"the model's features do not match the manifest's feature schema in {directory}")
    return Artifact(model=model, manifest=manifest, path=directory, manifest_sha256=manifest_digest(directory))


# -- group metrics ---------------------------------------------------------------------------------------

def group_metrics(y_true, y_pred, groups, *, positive=1) -> dict:
    """Selection rate, true positive rate and false positive rate of ``y_pred`` for each group of ``groups``.

    ``groups``: a named ``pandas.Series`` (or array) with one value per row. Returns ``{"attribute",
    "by_group": {group: {"n", "selection_rate", "true_positive_rate", "false_positive_rate"}},
    "difference": {metric: largest minus smallest over the groups}, "difference_interval": {metric: [low,
    high]}}`` (see :func:`_difference_interval`), rounded to 6 decimals: the
    quantities of fairlearn's ``MetricFrame`` with ``selection_rate``, ``true_positive_rate`` and
    ``false_positive_rate`` (a test checks they agree), computed here with NumPy so that the server's image
    needs no fairlearn.
    """
    y_true = np.asarray(y_true) == positive
    y_pred = np.asarray(y_pred) == positive
    values = np.asarray(groups)
    by_group, labels = {}, {}
    for group in sorted(set(values.tolist())):
        rows = values == group
        truth, predicted = y_true[rows], y_pred[rows]
        label = int(group) if isinstance(group, float) and group.is_integer() else group   # 0.0 -> "0"
        labels[str(label)] = group
        by_group[str(label)] = {
            "n": int(rows.sum()),
            "selection_rate": _round(predicted.mean()),
            "true_positive_rate": _round(predicted[truth].mean()) if truth.any() else None,
            "false_positive_rate": _round(predicted[~truth].mean()) if (~truth).any() else None,
        }
    difference, interval = {}, {}
    for metric in ("selection_rate", "true_positive_rate", "false_positive_rate"):
        rates = {group: row[metric] for group, row in by_group.items() if row[metric] is not None}
        difference[metric] = _round(max(rates.values()) - min(rates.values())) if rates else None
        interval[metric] = (_difference_interval(metric, y_true, y_pred, values, max(rates, key=rates.get),
                                                 min(rates, key=rates.get), labels) if len(rates) > 1 else None)
    return {"attribute": str(getattr(groups, "name", None) or "group"), "by_group": by_group,
            "difference": difference, "difference_interval": interval}


def _difference_interval(metric: str, y_true, y_pred, values, high: str, low: str, labels: dict,
                         resamples: int = 2000, seed: int = 0) -> list[float]:
    """The 95 % percentile bootstrap interval of ``metric(high) - metric(low)``, the two groups fixed by the
    point estimate (so the interval may include 0, where largest-minus-smallest never could), over rows drawn
    with replacement (``resamples``, seeded)."""
    counted = {"selection_rate": np.ones_like(y_true), "true_positive_rate": y_true,
               "false_positive_rate": ~y_true}[metric]
    drawn = np.random.default_rng(seed).integers(0, len(y_true), (resamples, len(y_true)))

    def rate(group: str) -> np.ndarray:
        rows = (values == labels[group]) & counted
        with np.errstate(invalid="ignore", divide="ignore"):
            return (rows & y_pred)[drawn].sum(axis=1) / rows[drawn].sum(axis=1)

    differences = rate(high) - rate(low)
    lower, upper = np.nanpercentile(differences, [2.5, 97.5])
    return [_round(lower), _round(upper)]


# -- the model card ----------------------------------------------------------------------------------------

def model_card(manifest) -> str:
    """The model card (Markdown) of a manifest, or of the artifact directory given instead."""
    if not isinstance(manifest, dict):
        manifest = verify(manifest)
    m = manifest
    metrics = m.get("metrics", {})
    data = m.get("data", {})
    importance = m.get("global_importance", {})
    lines = [
        f"# Model card: {m['name']} (version {m['version']})",
        "",
        "## Model details",
        f"- Estimator: `{m['estimator']}`",
        f"- Inputs: {len(m['features'])} numeric features (FP64); target `{m.get('target', 'y')}`, "
        f"classes {', '.join(str(c) for c in m['classes'])}",
        "- Saved with skops (no pickle); libraries: "
        + ", ".join(f"{lib} {_card_version(lib, version)}" for lib, version in sorted(m.get("libraries", {}).items())),
        "",
        "## Intended use",
        m.get("intended_use") or "Not stated.",
        "",
        "**Out of scope:** " + (m.get("out_of_scope") or "not stated."),
        "",
        "## Data",
    ]
    lines += [f"- {key.replace('_', ' ')}: {value}" for key, value in data.items()] or ["- Not described."]
    lines += ["", "## Metrics (held-out data)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {key.replace('_', ' ')} | {_fmt(value)} |" for key, value in metrics.items()]
    groups = m.get("group_metrics")
    if groups:
        lines += ["", f"## Group metrics (held-out data, by `{groups['attribute']}`)", "",
                  f"`{groups['attribute']}` is not an input of the model: it is used only here, to evaluate "
                  "the model's decisions (predicted class) group by group.", "",
                  "| group | n | selection rate | true positive rate | false positive rate |", "|---|---|---|---|---|"]
        lines += [f"| {group} | {row['n']} | {_fmt(row['selection_rate'])} | {_fmt(row['true_positive_rate'])} "
                  f"| {_fmt(row['false_positive_rate'])} |" for group, row in groups["by_group"].items()]
        difference = groups["difference"]
        lines += [f"| difference (largest - smallest) | | {_fmt(difference['selection_rate'])} "
                  f"| {_fmt(difference['true_positive_rate'])} | {_fmt(difference['false_positive_rate'])} |"]
        interval = groups.get("difference_interval")
        if interval:
            spans = [f"{bounds[0]:+.3f} to {bounds[1]:+.3f}" if bounds else "" for bounds in
                     (interval[m] for m in ("selection_rate", "true_positive_rate", "false_positive_rate"))]
            lines += [f"| its 95 % interval | | {' | '.join(spans)} |", "",
                      "The interval is a bootstrap over the held-out rows, of the same two groups' difference: "
                      "where it includes 0, these rows cannot tell the gap from chance."]
    lines += ["", "## Top global features", ""]
    if importance.get("values"):
        lines += [f"Ranked by {importance.get('method', 'importance')}.", "", "| rank | feature | importance |",
                  "|---|---|---|"]
        lines += [f"| {rank} | `{row['feature']}` | {_fmt(row['importance'])} |"
                  for rank, row in enumerate(importance["values"][:5], start=1)]
    else:
        lines.append("Not computed.")
    lines += ["", "## Features (training ranges)", "", "| feature | min | max | mean |", "|---|---|---|---|"]
    lines += [f"| `{f['name']}` | {_fmt(f['min'])} | {_fmt(f['max'])} | {_fmt(f['mean'])} |" for f in m["features"]]
    lines += ["", "## Known limitations", ""]
    lines += [f"- {text}" for text in m.get("limitations", [])] or ["- None stated (which is itself a warning)."]
    return "\n".join(lines) + "\n"


# -- the course model --------------------------------------------------------------------------------------

def default_model_dir() -> Path:
    """Where the course model lives: ``$GLASSBOX_MODEL_DIR``, else ``<glassbox home>/models/credit``."""
    if os.environ.get("GLASSBOX_MODEL_DIR"):
        return Path(os.environ["GLASSBOX_MODEL_DIR"])
    from glassbox.paths import home

    return home() / "models" / COURSE_MODEL_NAME


def build_course_model(directory=None, *, seed: int = 0, force: bool = False) -> Path:
    """Train the course model and write it as an artifact, unless a valid one with the same recipe is there.

    The recipe: ``glassbox.data.load_credit(n_samples=4000, seed=seed)``, the split of
    ``glassbox.data.train_test(test_size=0.25, seed=seed)``, every feature but those of
    :data:`COURSE_EXCLUDED` (the leaky ``days_in_collections``, the noise identifier ``branch_id`` and the
    sensitive attribute ``gender``), and ``HistGradientBoostingClassifier(**COURSE_PARAMS,
    random_state=seed)``, lab 03's hyperparameters. The card reports group metrics by ``gender`` on the
    held-out data. Safe to call from several processes at once (a lock file serialises builders). Returns the
    artifact's directory.
    """
    from threadpoolctl import threadpool_limits

    directory = Path(directory) if directory is not None else default_model_dir()
    directory.parent.mkdir(parents=True, exist_ok=True)
    recipe = {"dataset": "glassbox.data.load_credit", "n_samples": 4000, "seed": seed, "test_size": 0.25,
              "excluded": sorted(COURSE_EXCLUDED), "hyperparameters": dict(COURSE_PARAMS)}
    with open(directory.parent / f".{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and _has_recipe(directory, recipe):
            return directory
        from sklearn.ensemble import HistGradientBoostingClassifier

        from glassbox.data import load_credit, train_test

        data = load_credit(n_samples=recipe["n_samples"], seed=seed)
        X_train, X_test, y_train, y_test = train_test(data, test_size=recipe["test_size"], seed=seed)
        features = [name for name in data.feature_names if name not in COURSE_EXCLUDED]
        # One thread: OpenMP's busy-waiting makes a two-thread fit many times slower on a busy 2-core machine.
        with threadpool_limits(1):
            model = HistGradientBoostingClassifier(**COURSE_PARAMS, random_state=seed).fit(X_train[features],
                                                                                            y_train)
            save(
                model, directory, X_train=X_train[features], X_test=X_test[features], y_test=y_test,
                name=COURSE_MODEL_NAME, version="1",
                data={**recipe, "target": data.y.name, "n_train": len(X_train), "n_test": len(X_test),
                      "why_excluded": "; ".join(f"{name}: {why}" for name, why in COURSE_EXCLUDED.items()),
                      "positive_rate": round(float(np.mean(y_train)), 4)},
                intended_use=_COURSE_INTENDED_USE, out_of_scope=_COURSE_OUT_OF_SCOPE,
                limitations=_COURSE_LIMITATIONS, groups=X_test[COURSE_SENSITIVE_ATTRIBUTE], overwrite=True,
            )
    return directory


def _has_recipe(directory: Path, recipe: dict) -> bool:
    try:
        manifest = verify(directory)
    except ArtifactError:
        return False
    same_data = all(manifest.get("data", {}).get(key) == value for key, value in recipe.items())
    same_sklearn = manifest.get("libraries", {}).get("scikit-learn") == _version("scikit-learn")
    current_card = bool((manifest.get("group_metrics") or {}).get("difference_interval"))  # older cards lack it
    return same_data and same_sklearn and current_card and manifest.get("name") == COURSE_MODEL_NAME


# -- private helpers ---------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _qualname(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _version(distribution: str) -> str:
    try:
        return _metadata.version(distribution)
    except _metadata.PackageNotFoundError:
        return "not installed"


def _round(value) -> float:
    return round(float(value), 6)


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _card_version(library: str, version: str) -> str:
    """Versions as the card shows them: Python by minor version (the manifest keeps the full one)."""
    return ".".join(version.split(".")[:2]) if library == "python" else version


def _jsonable(value):
    """Model parameters and classes as plain JSON values (anything else becomes its repr)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _feature_names(model, X) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        names = getattr(X, "columns", None)
    if names is None:
        raise ArtifactError("the feature names are unknown: fit the model on a DataFrame, or pass X_train as one")
    return [str(name) for name in names]


def _as_matrix(X, feature_names) -> np.ndarray:
    if hasattr(X, "columns"):
        X = X[feature_names]
    return np.asarray(X, dtype=np.float64)


def _metrics(model, X_test: np.ndarray, y_test: np.ndarray) -> dict:
    from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

    proba = _predict_proba(model, X_test)
    predicted = np.asarray(model.classes_)[proba.argmax(axis=1)]
    metrics = {"n_test": int(len(y_test)), "accuracy": _round(accuracy_score(y_test, predicted))}
    if proba.shape[1] == 2:
        metrics["roc_auc"] = _round(roc_auc_score(y_test, proba[:, 1]))
        metrics["brier_score"] = _round(brier_score_loss(y_test, proba[:, 1], pos_label=model.classes_[1]))
    metrics["log_loss"] = _round(log_loss(y_test, proba, labels=model.classes_))
    return metrics


def _predicted(model, X: np.ndarray) -> np.ndarray:
    """The predicted class of each row (the class of largest probability, as ``predict`` gives it)."""
    return np.asarray(model.classes_)[_predict_proba(model, X).argmax(axis=1)]


def _predict_proba(model, X: np.ndarray) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():  # arrays carry no feature names; the columns are in the model's order
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return model.predict_proba(X)


def _global_importance(model, X_test: np.ndarray, feature_names: list[str]) -> dict:
    """Mean absolute SHAP value per feature on the held-out data (log-odds scale), largest first."""
    import shap

    values = shap.TreeExplainer(model).shap_values(X_test, check_additivity=False)
    values = np.asarray(values)
    if values.ndim == 3:  # one slice per class: use the positive class
        values = values[..., -1]
    mean_abs = np.abs(values).mean(axis=0)
    order = np.argsort(-mean_abs, kind="stable")
    return {
        "method": "mean |SHAP value| on the held-out data (log-odds)",
        "values": [{"feature": feature_names[i], "importance": _round(mean_abs[i])} for i in order],
    }


def _main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"build", "verify", "card"}:
        print("usage: python -m glassbox.artifacts build|verify|card [DIR] [--force]", file=sys.stderr)
        return 2
    positional = [arg for arg in argv[1:] if not arg.startswith("--")]
    directory = Path(positional[0]) if positional else default_model_dir()
    try:
        if argv[0] == "build":
            path = build_course_model(directory, force="--force" in argv)
            print(f"{path}: manifest sha256 {manifest_digest(path)}")
        elif argv[0] == "verify":
            manifest = verify(directory)
            print(f"{directory}: {manifest['name']} v{manifest['version']} verified "
                  f"(manifest sha256 {manifest_digest(directory)})")
        else:
            print(model_card(directory), end="")
    except ArtifactError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
