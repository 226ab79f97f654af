"""glassbox.artifacts: skops persistence, the integrity manifest, refusals, the model card, the course model."""

import hashlib
import json
import os
import shutil
import threading
import zipfile
from importlib import metadata

import numpy as np
import pytest
import skops.io as sio

from glassbox import artifacts
from glassbox.artifacts import ArtifactError
from glassbox.data import LEAKY_FEATURE, load_credit, train_test


@pytest.fixture(scope="module")
def course_dir(tmp_path_factory):
    return artifacts.build_course_model(tmp_path_factory.mktemp("model") / "credit")


@pytest.fixture(scope="module")
def held_out():
    data = load_credit()
    _, X_test, _, y_test = train_test(data)
    return X_test.drop(columns=list(artifacts.COURSE_EXCLUDED)), y_test


@pytest.fixture
def copy(course_dir, tmp_path):
    """A private copy of the course artifact, to damage."""
    target = tmp_path / "credit"
    shutil.copytree(course_dir, target)
    return target


def _rewrite_manifest(directory, change):
    path = directory / artifacts.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2))


def _reseal(directory, file):
    """What an attacker who can also rewrite the manifest does: record the new file's hash."""
    data = (directory / file).read_bytes()
    _rewrite_manifest(directory, lambda m: m["files"][file].update(
        sha256=hashlib.sha256(data).hexdigest(), bytes=len(data)))


def test_the_manifest_records_every_file_the_versions_the_schema_and_the_metrics(course_dir):
    manifest = artifacts.verify(course_dir)
    assert manifest["format"] == artifacts.FORMAT
    listed = set(manifest["files"])
    assert listed | {artifacts.MANIFEST_FILE} == {p.name for p in course_dir.iterdir()}
    for name, record in manifest["files"].items():
        data = (course_dir / name).read_bytes()
        assert record == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    for library in ("scikit-learn", "numpy", "scipy", "skops", "shap"):
        assert manifest["libraries"][library] == metadata.version(library)
    names = [f["name"] for f in manifest["features"]]
    assert LEAKY_FEATURE not in names and len(names) == 9 and "debt_to_income" in names
    age = next(f for f in manifest["features"] if f["name"] == "age")
    assert 18 <= age["min"] < age["mean"] < age["max"] <= 80
    metrics = manifest["metrics"]
    assert metrics["n_test"] == 1000
    # Better than always answering "no default" (the base rate), and well above chance in ranking.
    assert metrics["accuracy"] > 1 - manifest["data"]["positive_rate"] + 0.05
    assert 0.75 < metrics["roc_auc"] < 0.95
    assert abs(metrics["roc_auc"] - 0.851) < 0.001   # lab 03's hyperparameters, without branch_id and gender
    top = [row["feature"] for row in manifest["global_importance"]["values"][:3]]
    assert "debt_to_income" in top  # the strongest true effect in the generator


def test_the_shipped_model_leaves_out_the_noise_identifier_and_the_sensitive_attribute(course_dir):
    art = artifacts.load(course_dir)
    for excluded in ("branch_id", "gender", LEAKY_FEATURE):
        assert excluded not in art.feature_names
        assert excluded not in list(art.model.feature_names_in_)
    assert art.model.n_features_in_ == 9
    params = art.model.get_params()
    assert {key: params[key] for key in artifacts.COURSE_PARAMS} == artifacts.COURSE_PARAMS   # lab 03's
    assert "gender" in art.card and "not an input" in art.card


def test_the_card_reports_group_metrics_that_fairlearn_recomputes(course_dir):
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate

    art = artifacts.load(course_dir)
    data = load_credit()
    _, X_test, _, y_test = train_test(data)
    predicted = art.model.predict(X_test[art.feature_names])
    frame = MetricFrame(metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                                 "false_positive_rate": false_positive_rate},
                        y_true=y_test, y_pred=predicted, sensitive_features=X_test["gender"])
    groups = art.manifest["group_metrics"]
    assert groups["attribute"] == "gender"
    assert sorted(groups["by_group"]) == ["0", "1"]
    for group, row in groups["by_group"].items():
        assert row["n"] == int((X_test["gender"] == int(group)).sum())
        for metric in ("selection_rate", "true_positive_rate", "false_positive_rate"):
            assert row[metric] == pytest.approx(frame.by_group.loc[int(group), metric], abs=1e-6)
    difference = frame.difference(method="between_groups")
    for metric, value in groups["difference"].items():
        assert value == pytest.approx(difference[metric], abs=2e-6)
    # The card shows the same numbers (to 3 decimals) in its own section.
    section = art.card.split("## Group metrics (held-out data, by `gender`)")[1].split("## ")[0]
    for group, row in groups["by_group"].items():
        assert (f"| {group} | {row['n']} | {row['selection_rate']:.3f} | {row['true_positive_rate']:.3f} | "
                f"{row['false_positive_rate']:.3f} |") in section
    assert f"| {groups['difference']['true_positive_rate']:.3f} |" in section
    # ... with the interval of each gap: the course model's TPR gap (0.075) cannot be told from chance.
    low, high = groups["difference_interval"]["true_positive_rate"]
    assert low < 0 < groups["difference"]["true_positive_rate"] < high
    assert f"| {low:+.3f} to {high:+.3f} |" in section


def test_a_gap_interval_excludes_zero_only_when_the_rows_show_a_gap():
    import pandas as pd

    rng = np.random.default_rng(1)
    groups = pd.Series(np.repeat([0, 1], 2000), name="g")
    y_true = rng.random(4000) < 0.3
    for flagged_in_group_1, zero_inside in ((0.5, True), (0.7, False)):
        y_pred = rng.random(4000) < np.where(groups == 1, flagged_in_group_1, 0.5)
        low, high = artifacts.group_metrics(y_true, y_pred, groups)["difference_interval"]["selection_rate"]
        assert (low < 0 < high) == zero_inside, (flagged_in_group_1, low, high)
        assert high - low < 0.07            # about 4 standard errors of a difference of two rates on 2000 rows


def test_group_metrics_by_hand():
    y_true = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    y_pred = np.array([1, 0, 1, 0, 1, 1, 0, 0])
    import pandas as pd

    result = artifacts.group_metrics(y_true, y_pred, pd.Series([0, 0, 0, 0, 1, 1, 1, 1], name="g"))
    assert result["attribute"] == "g"
    assert result["by_group"]["0"] == {"n": 4, "selection_rate": 0.5, "true_positive_rate": 0.5,
                                       "false_positive_rate": 0.5}
    assert result["by_group"]["1"] == {"n": 4, "selection_rate": 0.5, "true_positive_rate": 1.0,
                                       "false_positive_rate": pytest.approx(1 / 3, abs=1e-6)}
    assert result["difference"]["true_positive_rate"] == 0.5


def test_the_model_file_is_a_skops_zip_not_a_pickle(course_dir):
    path = course_dir / artifacts.MODEL_FILE
    assert zipfile.is_zipfile(path)
    assert not path.read_bytes().startswith(b"\x80")  # pickle protocol 2+ opcode
    assert sio.get_untrusted_types(file=path) == list(artifacts.TRUSTED_TYPES)


def test_loading_gives_back_the_model_that_was_saved(course_dir, held_out):
    X_test, y_test = held_out
    art = artifacts.load(course_dir)
    assert art.name == "credit" and art.feature_names == list(X_test.columns)
    proba = art.model.predict_proba(X_test)
    from sklearn.metrics import roc_auc_score

    assert round(roc_auc_score(y_test, proba[:, 1]), 6) == art.manifest["metrics"]["roc_auc"]
    assert art.manifest_sha256 == hashlib.sha256((course_dir / "manifest.json").read_bytes()).hexdigest()


def test_building_again_reuses_the_artifact(course_dir):
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in course_dir.iterdir()}
    assert artifacts.build_course_model(course_dir) == course_dir
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in course_dir.iterdir()}
    assert before == after


def test_concurrent_builders_leave_one_valid_artifact(tmp_path):
    target = tmp_path / "credit"
    errors = []

    def build():
        try:
            artifacts.build_course_model(target)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    artifacts.verify(target)
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["credit"]  # no staging left behind


@pytest.mark.parametrize("file", [artifacts.MODEL_FILE, artifacts.CARD_FILE])
def test_a_changed_file_is_refused(copy, file):
    data = bytearray((copy / file).read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    (copy / file).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"{file} .*does not match its sha256.*tampered"):
        artifacts.load(copy)
    with pytest.raises(ArtifactError, match="tampered"):
        artifacts.verify(copy)


def test_missing_and_unlisted_files_are_refused(copy, tmp_path):
    (copy / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ArtifactError, match="does not list: model.pkl"):
        artifacts.load(copy)
    (copy / "model.pkl").unlink()
    (copy / artifacts.CARD_FILE).unlink()
    with pytest.raises(ArtifactError, match="MODEL_CARD.md is listed in the manifest but missing"):
        artifacts.load(copy)


@pytest.mark.parametrize("case", ["no directory", "no manifest", "not json", "unknown format", "no files"])
def test_something_that_is_not_an_artifact_is_refused(copy, tmp_path, case):
    target = copy
    if case == "no directory":
        target = tmp_path / "nothing-here"
        expected = "does not exist"
    elif case == "no manifest":
        (copy / artifacts.MANIFEST_FILE).unlink()
        expected = "has no manifest.json"
    elif case == "not json":
        (copy / artifacts.MANIFEST_FILE).write_text("{not json")
        expected = "not valid JSON"
    elif case == "unknown format":
        _rewrite_manifest(copy, lambda m: m.update(format="mlflow-model/2"))
        expected = "unknown artifact format 'mlflow-model/2'"
    else:
        _rewrite_manifest(copy, lambda m: m.pop("files"))
        expected = "does not list model.skops"
    with pytest.raises(ArtifactError, match=expected):
        artifacts.load(target)


def test_a_resealed_model_with_an_untrusted_type_is_still_refused(copy):
    """Even when the attacker rewrites the manifest, skops refuses types outside the trusted list."""
    from sklearn.preprocessing import FunctionTransformer

    sio.dump(FunctionTransformer(os.system), copy / artifacts.MODEL_FILE)
    _reseal(copy, artifacts.MODEL_FILE)
    artifacts.verify(copy)  # the hashes agree now...
    with pytest.raises(ArtifactError, match="outside the trusted list: posix.system"):
        artifacts.load(copy)  # ...but loading still refuses


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_resealed_model_of_another_kind_is_refused(copy, held_out):
    from sklearn.linear_model import LogisticRegression

    X_test, y_test = held_out
    sio.dump(LogisticRegression(max_iter=500).fit(X_test, y_test), copy / artifacts.MODEL_FILE)
    _reseal(copy, artifacts.MODEL_FILE)
    with pytest.raises(ArtifactError, match="holds a sklearn.linear_model._logistic.LogisticRegression"):
        artifacts.load(copy)


def test_pinning_the_manifest_digest_catches_an_edited_manifest(copy, course_dir):
    pinned = artifacts.manifest_digest(course_dir)
    assert artifacts.load(copy, manifest_sha256=pinned).name == "credit"
    _rewrite_manifest(copy, lambda m: m["metrics"].update(roc_auc=0.99))  # a flattering lie
    assert artifacts.verify(copy)["metrics"]["roc_auc"] == 0.99  # the manifest alone cannot see it
    with pytest.raises(ArtifactError, match="not the pinned"):
        artifacts.load(copy, manifest_sha256=pinned)


def test_another_scikit_learn_version_is_refused(copy):
    _rewrite_manifest(copy, lambda m: m["libraries"].update({"scikit-learn": "1.2.0"}))
    with pytest.raises(ArtifactError, match="saved with scikit-learn 1.2.0.*rebuild"):
        artifacts.load(copy)


def test_the_model_card_is_generated_from_the_manifest(course_dir):
    manifest = artifacts.verify(course_dir)
    card = (course_dir / artifacts.CARD_FILE).read_text()
    assert card == artifacts.model_card(manifest) == artifacts.model_card(course_dir)
    for heading in ("## Intended use", "## Data", "## Metrics (held-out data)", "## Group metrics",
                    "## Top global features", "## Known limitations"):
        assert heading in card
    top5 = [row["feature"] for row in manifest["global_importance"]["values"][:5]]
    table = card.split("## Top global features")[1].split("## Features")[0]
    assert [line.split("`")[1] for line in table.splitlines() if line.startswith("| ") and "`" in line] == top5
    assert f"| roc auc | {manifest['metrics']['roc_auc']:.3f} |" in card
    assert LEAKY_FEATURE in card and "synthetic" in card and "gender" in card
    assert "nan" not in card.lower().replace("financ", "")


def test_save_refuses_to_overwrite_unless_asked(course_dir, tmp_path, held_out):
    art = artifacts.load(course_dir)
    X_test, y_test = held_out
    target = tmp_path / "again"
    artifacts.save(art.model, target, X_train=X_test, X_test=X_test, y_test=y_test, name="again")
    with pytest.raises(ArtifactError, match="exists"):
        artifacts.save(art.model, target, X_train=X_test, X_test=X_test, y_test=y_test, name="again")
    assert artifacts.load(target).name == "again"
    np.testing.assert_array_equal(artifacts.load(target).model.predict_proba(X_test),
                                  art.model.predict_proba(X_test))
