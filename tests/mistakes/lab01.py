"""Lab 01's catalogue of realistic mistakes (see ``tests/mistakes/__init__.py``)."""

from mistakes import Mistake

_FIT = "LogisticRegression(max_iter=1000)).fit(X_train, y_train)"
_BODY = '''rows = {{}}
for name, model in models.items():
    rows[name] = {{
        "accuracy": accuracy_score({y}, model.predict({X})),
        "roc_auc": roc_auc_score({y}, {score}),
    }}
return {result}'''


def _body(X="X", y="y", score="model.predict_proba(X)[:, 1]", result="pd.DataFrame(rows).T"):
    return _BODY.format(X=X, y=y, score=score, result=result)


MISTAKES = [
    # ---- Exercise 1: standardised coefficients -----------------------------------------------------------------
    Mistake("standardised-coefficients", "no scaler: raw features into the logistic regression",
            "logreg = LogisticRegression(max_iter=1000).fit(X_train, y_train)\n"
            "coefficients = pd.Series(logreg.coef_[0], index=X_train.columns)",
            ("per raw unit",), to_the_end=True),
    Mistake("standardised-coefficients", "fitted on the test rows (`X_test`, `y_test`)",
            "logreg = make_pipeline(scale_continuous(X_test.columns), LogisticRegression(max_iter=1000))"
            ".fit(X_test, y_test)\n"
            "coefficients = pd.Series(logreg[-1].coef_[0], index=logreg[-1].feature_names_in_)",
            ("fitted on the test data",)),
    Mistake("standardised-coefficients", "a plain `StandardScaler` on every column, the 0/1 ones too",
            f"logreg = make_pipeline(StandardScaler(), {_FIT}\n"
            "coefficients = pd.Series(logreg[-1].coef_[0], index=X_train.columns)",
            ("0/1 columns", "standardised too")),
    Mistake("standardised-coefficients", "weights labelled with `X_train.columns` after the ColumnTransformer "
                                         "reordered them",
            f"logreg = make_pipeline(scale_continuous(X_train.columns), {_FIT}\n"
            "coefficients = pd.Series(logreg[-1].coef_[0], index=X_train.columns)",
            ("wrong labels", "feature_names_in_")),
    Mistake("standardised-coefficients", "a bare array of weights, not a Series",
            f"logreg = make_pipeline(scale_continuous(X_train.columns), {_FIT}\n"
            "coefficients = logreg[-1].coef_[0]",
            ("pandas Series", "ndarray")),
    # ---- Exercise 2: a shallow tree ----------------------------------------------------------------------------
    Mistake("shallow-tree", "no depth limit: the tree grows until its leaves are pure",
            "tree = DecisionTreeClassifier(random_state=0).fit(X_train, y_train)\n"
            "rules = export_text(tree, feature_names=list(X_train.columns))",
            ("levels deep", "max_depth")),
    Mistake("shallow-tree", "the tree fitted on the test rows",
            "tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_test, y_test)\n"
            "rules = export_text(tree, feature_names=list(X_test.columns))",
            ("fitted on the test data",)),
    Mistake("shallow-tree", "rules without feature names",
            "tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_train, y_train)\n"
            "rules = export_text(tree)",
            ("feature_0", "feature_names"), to_the_end=True),
    Mistake("shallow-tree", "the tree made but never fitted",
            "tree = DecisionTreeClassifier(max_depth=3, random_state=0)\n"
            "rules = export_text(tree, feature_names=list(X_train.columns))",
            ("NotFittedError", "before `fit`")),
    # ---- Exercise 3: held-out scores ---------------------------------------------------------------------------
    Mistake("held-out-scores", "ROC AUC from the 0/1 predictions",
            _body(score="model.predict(X)"), ("predicted labels (0/1)", "predict_proba"), to_the_end=True),
    Mistake("held-out-scores", "ROC AUC from the probability of *repaid* (column 0)",
            _body(score="model.predict_proba(X)[:, 0]"), ("1 minus", "column 0")),
    Mistake("held-out-scores", "scored on the training rows (the globals `X_train`, `y_train`)",
            _body(X="X_train", y="y_train", score="model.predict_proba(X_train)[:, 1]"), ("training data",)),
    Mistake("held-out-scores", "models as columns (the table not transposed)",
            _body(result="pd.DataFrame(rows)"), ("columns 'accuracy' and 'roc_auc'", "transpose")),
    Mistake("held-out-scores", "the dict of scores returned, not a DataFrame",
            _body(result="rows"), ("DataFrame, not dict",)),
    # ---- Exercise 4: the leak ----------------------------------------------------------------------------------
    Mistake("find-the-leak", "single-feature ROC AUC on the training rows",
            "single_auc = pd.Series({f: roc_auc_score(y_train, X_train[f]) for f in X_train.columns})\n"
            "suspect = single_auc.idxmax()",
            ("training data", "held-out rows")),
    Mistake("find-the-leak", "a genuine risk factor named as the leak",
            "single_auc = pd.Series({f: roc_auc_score(y_test, X_test[f]) for f in X_test.columns})\n"
            "suspect = 'debt_to_income'",
            ("genuine risk factor", "data dictionary"), to_the_end=True),
    Mistake("find-the-leak", "the proxy `revolving_balance`, which has no effect, named as the leak",
            "single_auc = pd.Series({f: roc_auc_score(y_test, X_test[f]) for f in X_test.columns})\n"
            "suspect = 'revolving_balance'",
            ("no real effect", "not near-perfect")),
    Mistake("find-the-leak", "the largest ROC AUC (a number) given as the suspect",
            "single_auc = pd.Series({f: roc_auc_score(y_test, X_test[f]) for f in X_test.columns})\n"
            "suspect = single_auc.max()",
            ("the feature's name", "not the value")),
    Mistake("find-the-leak", "the suspect's name typed with spaces",
            "single_auc = pd.Series({f: roc_auc_score(y_test, X_test[f]) for f in X_test.columns})\n"
            "suspect = 'days in collections'",
            ("not a column of X_test", "underscores")),
    # ---- Exercise 5: predict the tree against the baseline -----------------------------------------------------
    Mistake("baseline-prediction", "predicted the tree below the baseline", "prediction = 'a'",
            ("2.9 points", "does beat")),
    Mistake("baseline-prediction", "predicted 5 to 15 points above the baseline", "prediction = 'c'",
            ("2.9 points", "little room"), to_the_end=True),
    Mistake("baseline-prediction", "predicted more than 15 points above the baseline", "prediction = 'd'",
            ("2.9 points", "more than even the black boxes")),
    # ---- Exercise 6: read the cross-validation -----------------------------------------------------------------
    Mistake("cv-reading", "a small lead read as no difference", "answer = 'a'",
            ("size is not noise", "wins 5 of 5 folds")),
    Mistake("cv-reading", "a higher mean read as better, ignoring the spread", "answer = 'b'",
            ("needs the noise", "luck of the split")),
    Mistake("cv-reading", "overlapping ranges mean ± spread read as a tie", "answer = 'd'",
            ("overlapping ranges", "fold by fold"), to_the_end=True),
    # ---- Exercise 7: which weight cannot be read as an effect --------------------------------------------------
    Mistake("unreadable-weights", "`debt_to_income` chosen: a feature whose curve is straight", "answer = 'a'",
            ("close to its straight line",)),
    Mistake("unreadable-weights", "`income` chosen: a curve that bends but keeps its direction", "answer = 'c'",
            ("direction right",), to_the_end=True),
    Mistake("unreadable-weights", "`late_payments` chosen: a feature whose curve is straight", "answer = 'd'",
            ("rises steadily",)),
]
