"""Lab 03's catalogue of realistic mistakes: what a learner types instead of each exercise's solution.

Each ``code`` replaces the solution block of its exercise's cell in solutions/03-local-explanations.ipynb; the
cell's check must then say "not yet" with every phrase of ``says``. The instructor guide's table for lab 03 has one
row per entry, headed by its ``mistake``.
"""

from mistakes import Mistake

_EXPLAINER = ("lime_explainer = LimeTabularExplainer(\n"
              "    X_train.to_numpy(), feature_names=features, class_names=class_names, mode=\"classification\",\n"
              "    random_state=0\n)\n")


def _explained(arguments: str) -> str:
    return _EXPLAINER + f"lime_exp = lime_explainer.explain_instance(row.to_numpy(), predict_proba, {arguments})\n"


def _metric_frame(metrics: str = 'false_positive_rate', y_true: str = "y_test", y_pred: str = "y_pred",
                  gaps: str = "metric_frame.difference()") -> str:
    return ("metric_frame = MetricFrame(\n"
            f"    metrics={{\"selection rate\": selection_rate, \"TPR\": true_positive_rate, \"FPR\": {metrics}}},\n"
            f"    y_true={y_true}, y_pred={y_pred}, sensitive_features=groups,\n)\n"
            f"gaps = {gaps}\n")


MISTAKES = [
    # ---- Exercise 1: a seeded LIME explanation ----
    Mistake("lime-seeded", "LIME without a seed",
            "lime_explainer = LimeTabularExplainer(\n"
            "    X_train.to_numpy(), feature_names=features, class_names=class_names, mode=\"classification\"\n)\n"
            "lime_exp = lime_explainer.explain_instance(row.to_numpy(), predict_proba, num_features=6,\n"
            "                                           num_samples=2000)\n",
            ("without a seed", "random_state"), to_the_end=True),
    Mistake("lime-seeded", "explainer without feature names",
            "lime_explainer = LimeTabularExplainer(X_train.to_numpy(), class_names=class_names,\n"
            "                                      mode=\"classification\", random_state=0)\n"
            "lime_exp = lime_explainer.explain_instance(row.to_numpy(), predict_proba, num_features=6,\n"
            "                                           num_samples=2000)\n",
            ("feature name", "feature_names")),
    Mistake("lime-seeded", "explainer built on the test set",
            _explained("num_features=6, num_samples=2000").replace("X_train.to_numpy()", "X_test.to_numpy()"),
            ("not the 3000 training rows", "X_train")),
    Mistake("lime-seeded", "too few features",
            _explained("num_features=2, num_samples=2000"), ("only 2 feature", "num_features")),
    Mistake("lime-seeded", "class 0 explained",
            _explained("num_features=6, num_samples=2000, labels=(0,)"), ("not class 1", "labels")),
    Mistake("lime-seeded", "kept `as_list()` instead of the explanation",
            _explained("num_features=6, num_samples=2000").replace(
                "lime_exp = lime_explainer.explain_instance(row.to_numpy(), predict_proba, "
                "num_features=6, num_samples=2000)",
                "lime_exp = lime_explainer.explain_instance(row.to_numpy(), predict_proba, "
                "num_features=6, num_samples=2000).as_list()"),
            ("as_list()", "explain_instance")),
    Mistake("lime-seeded", "the first test row explained instead of `row`",
            _explained("num_features=6, num_samples=2000").replace("explain_instance(row.to_numpy()",
                                                                   "explain_instance(X_test.iloc[0].to_numpy()"),
            ("another applicant", "`row`")),

    # ---- Exercise 2: predict LIME on the unsure row ----
    Mistake("lime-prediction", "predicted the unsure row as stable as the sure one (a)", 'prediction = "a"\n',
            ("not quite", "saturated row looked that stable"), to_the_end=True),
    Mistake("lime-prediction", "predicted the top feature changes (c)", 'prediction = "c"\n',
            ("not quite", "no seed dislodges it")),
    Mistake("lime-prediction", "predicted identical weights for every seed (d)", 'prediction = "d"\n',
            ("not quite", "other made-up neighbours")),

    # ---- Exercise 3: additivity ----
    Mistake("shap-additivity", "probabilities instead of log-odds",
            "reconstructed = shap_values.base_values + shap_values.values.sum(axis=1)\n"
            "model_output = model.predict_proba(X_test)[:, 1]\n",
            ("holds probabilities", "decision_function"), to_the_end=True),
    Mistake("shap-additivity", "class labels instead of log-odds",
            "reconstructed = shap_values.base_values + shap_values.values.sum(axis=1)\n"
            "model_output = model.predict(X_test)\n",
            ("class labels", "decision_function")),
    Mistake("shap-additivity", "base value left out",
            "reconstructed = shap_values.values.sum(axis=1)\nmodel_output = model.decision_function(X_test)\n",
            ("base value", "missing")),
    Mistake("shap-additivity", "summed over the rows",
            "reconstructed = shap_values.base_values[0] + shap_values.values.sum(axis=0)\n"
            "model_output = model.decision_function(X_test)\n",
            ("one number per feature", "the sum ran down the rows")),

    # ---- Exercise 4: the waterfall's input ----
    Mistake("waterfall-input", "all rows given to the waterfall", "one_row = shap_values\n",
            ("holds 1000 rows", "beeswarm")),
    Mistake("waterfall-input", "a bare array of SHAP values", "one_row = shap_values.values[ROW]\n",
            ("needs a shap.Explanation", "not its `.values`")),
    Mistake("waterfall-input", "a one-row slice", "one_row = shap_values[ROW:ROW + 1]\n",
            ("slice", "row axis"), to_the_end=True),
    Mistake("waterfall-input", "a feature's column instead of a row", "one_row = shap_values[:, ROW]\n",
            ("one feature's SHAP values across 1000 rows", "first index")),
    Mistake("waterfall-input", "the first row instead of the one at `ROW`", "one_row = shap_values[0]\n",
            ("another applicant", "`ROW`")),

    # ---- Exercise 5: the leak removed ----
    Mistake("leak-removed", "leak still in",
            "clean_features = list(features)\n"
            "model_clean = HistGradientBoostingClassifier(**params).fit(X_train[clean_features], y_train)\n",
            ("still sees `days_in_collections`",), to_the_end=True),
    Mistake("leak-removed", "sensitive attribute dropped too",
            "clean_features = [f for f in features if f not in (data.leaky_feature, data.sensitive_attribute)]\n"
            "model_clean = HistGradientBoostingClassifier(**params).fit(X_train[clean_features], y_train)\n",
            ("also lost ['gender']", "only the leaky feature")),
    Mistake("leak-removed", "fitted on an array",
            "clean_features = [f for f in features if f != data.leaky_feature]\n"
            "model_clean = HistGradientBoostingClassifier(**params).fit(X_train[clean_features].to_numpy(), "
            "y_train)\n",
            ("without column names", "DataFrame")),
    Mistake("leak-removed", "model never fitted",
            "clean_features = [f for f in features if f != data.leaky_feature]\n"
            "model_clean = HistGradientBoostingClassifier(**params)\n",
            ("not fitted", ".fit(")),
    Mistake("leak-removed", "fitted on the test rows",
            "clean_features = [f for f in features if f != data.leaky_feature]\n"
            "model_clean = HistGradientBoostingClassifier(**params).fit(X_test[clean_features], y_test)\n",
            ("fitted on the test rows", "not held-out")),
    Mistake("leak-removed", "default hyper-parameters instead of `params`",
            "clean_features = [f for f in features if f != data.leaky_feature]\n"
            "model_clean = HistGradientBoostingClassifier(random_state=0).fit(X_train[clean_features], y_train)\n",
            ("not the same model", "`params`")),

    # ---- Exercise 6: attributions by group ----
    Mistake("group-attributions", "absolute value after the mean",
            "mean_shap_by_group = shap_frame.groupby(groups).mean().T\n"
            "mean_abs_shap_by_group = shap_frame.groupby(groups).mean().T.abs()\n",
            ("|mean SHAP|", "abs()` first"), to_the_end=True),
    Mistake("group-attributions", "mean of absolute SHAP values in the signed table",
            "mean_shap_by_group = shap_frame.abs().groupby(groups).mean().T\n"
            "mean_abs_shap_by_group = shap_frame.abs().groupby(groups).mean().T\n",
            ("holds mean |SHAP|", "no `.abs()`")),
    Mistake("group-attributions", "table not turned round",
            "mean_shap_by_group = shap_frame.groupby(groups).mean()\n"
            "mean_abs_shap_by_group = shap_frame.abs().groupby(groups).mean()\n",
            ("one row per group", ".T")),
    Mistake("group-attributions", "grouped by the training rows' attribute",
            "mean_shap_by_group = shap_frame.groupby(X_train[data.sensitive_attribute]).mean().T\n"
            "mean_abs_shap_by_group = shap_frame.abs().groupby(X_train[data.sensitive_attribute]).mean().T\n",
            ("explained rows", "groups")),

    # ---- Exercise 7: a MetricFrame ----
    Mistake("metric-frame", "false negative rate in place of the FPR",
            "from fairlearn.metrics import false_negative_rate\n" + _metric_frame(metrics="false_negative_rate"),
            ("false negative rate", "false positive"), to_the_end=True),
    Mistake("metric-frame", "`y_true` and `y_pred` swapped", _metric_frame(y_true="y_pred", y_pred="y_test"),
            ("swapped", "y_true")),
    Mistake("metric-frame", "the leaky model's decisions", _metric_frame(y_pred="model.predict(X_test)"),
            ("clean model's decisions",)),
    Mistake("metric-frame", "`by_group` as the gaps", _metric_frame(gaps="metric_frame.by_group"),
            ("per-group values", ".difference()")),
    Mistake("metric-frame", "ratios as the gaps", _metric_frame(gaps="metric_frame.ratio()"),
            ("ratios", ".difference()")),

    # ---- Exercise 8: reading the MetricFrame ----
    Mistake("metric-reading", "small attribution read as fairness (a)", 'answer = "a"\n',
            ("not quite", "attributions describe how the score is computed"), to_the_end=True),
    Mistake("metric-reading", "FPR gap read as the largest (c)", 'answer = "c"\n',
            ("not quite", "smallest of the three")),
    Mistake("metric-reading", "gaps blamed on the `gender` column (d)", 'answer = "d"\n',
            ("not quite", "proxy")),
]
