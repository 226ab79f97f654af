"""Lab 02's catalogue of realistic mistakes: what a struggling learner types in each exercise cell."""

from mistakes import Mistake

MISTAKES = [
    # ---- Exercise 1: permutation importance on held-out data -----------------------------------------------
    Mistake("permutation-importance", "computed on the training data",
            'result = permutation_importance(forest, X_train, y_train, n_repeats=10, random_state=0, '
            'scoring="roc_auc")',
            ("computed on the training data", "X_test"), to_the_end=True),
    Mistake("permutation-importance", "one repeat",
            'result = permutation_importance(forest, X_test, y_test, n_repeats=1, random_state=0, scoring="roc_auc")',
            ("only 1 repeat", "n_repeats")),
    Mistake("permutation-importance", "no seed",
            'result = permutation_importance(forest, X_test, y_test, n_repeats=10, scoring="roc_auc")',
            ("does not reproduce", "random_state")),
    Mistake("permutation-importance", "default scoring",
            "result = permutation_importance(forest, X_test, y_test, n_repeats=10, random_state=0)",
            ("accuracy", "roc_auc")),
    Mistake("permutation-importance", "kept only the means",
            'result = permutation_importance(forest, X_test, y_test, n_repeats=10, random_state=0, '
            'scoring="roc_auc").importances_mean',
            ("should be what permutation_importance returns", "whole object")),
    # ---- Exercise 2: features that cannot be told from noise -----------------------------------------------
    Mistake("noise-like", "the spread ignored (mean <= 0 only)",
            "noise_like = [f for f, m in zip(X_test.columns, result.importances_mean) if m <= 0]",
            ("should be in `noise_like` too", "spread"), to_the_end=True),
    Mistake("noise-like", "the test the wrong way round",
            "noise_like = [f for f, m, s in zip(X_test.columns, result.importances_mean, result.importances_std)"
            " if m - 2 * s > 0]",
            ("wrong way round",)),
    Mistake("noise-like", "a mask instead of names",
            "noise_like = result.importances_mean - 2 * result.importances_std <= 0",
            ("mask of True/False", "names")),
    Mistake("noise-like", "positions instead of names",
            "noise_like = list(np.where(result.importances_mean - 2 * result.importances_std <= 0)[0])",
            ("list of feature names", "column names")),
    # ---- Exercise 3: remove the twin ----------------------------------------------------------------------
    Mistake("correlated-pair", "refit still sees the twin",
            "model_without = RandomForestClassifier(n_estimators=100, random_state=0).fit(X_train, y_train)\n"
            'result_without = permutation_importance(model_without, X_test, y_test, n_repeats=10, random_state=0, '
            'scoring="roc_auc")',
            ("still sees revolving_balance",)),
    Mistake("correlated-pair", "dropped the causal feature instead",
            "model_without = RandomForestClassifier(n_estimators=100, random_state=0).fit("
            "X_train.drop(columns=keep), y_train)\n"
            "result_without = permutation_importance(model_without, X_test.drop(columns=keep), y_test, "
            'n_repeats=10, random_state=0, scoring="roc_auc")',
            ("must keep credit_utilization",)),
    Mistake("correlated-pair", "the refit measured on the training data",
            "model_without = RandomForestClassifier(n_estimators=100, random_state=0).fit("
            "X_train.drop(columns=proxy), y_train)\n"
            "result_without = permutation_importance(model_without, X_train.drop(columns=proxy), y_train, "
            'n_repeats=10, random_state=0, scoring="roc_auc")',
            ("training data", "X_test"), to_the_end=True),
    # ---- Exercise 4: the recovered shape ------------------------------------------------------------------
    Mistake("recovered-shape", "probabilities instead of log-odds",
            'pd_age = partial_dependence(boosting, X_test, ["age"], grid_resolution=30, percentiles=(0.01, 0.99), '
            'method="brute")\n'
            'grid, curve = pd_age["grid_values"][0], pd_age["average"][0]',
            ("probability scale", "response_method"), to_the_end=True),
    Mistake("recovered-shape", "the default method for boosting (recursion: training data, shifted)",
            'pd_age = partial_dependence(boosting, X_test, ["age"], grid_resolution=30, percentiles=(0.01, 0.99), '
            'response_method="decision_function")\n'
            'grid, curve = pd_age["grid_values"][0], pd_age["average"][0]',
            ('method="recursion"', "training data", 'method="brute"')),
    Mistake("recovered-shape", "ICE curves instead of the average",
            'pd_age = partial_dependence(boosting, X_test, ["age"], grid_resolution=30, percentiles=(0.01, 0.99), '
            'response_method="decision_function", kind="individual")\n'
            'grid, curve = pd_age["grid_values"][0], pd_age["individual"][0]',
            ("one curve per row", "average")),
    Mistake("recovered-shape", "another feature",
            'pd_age = partial_dependence(boosting, X_test, ["debt_to_income"], grid_resolution=30, '
            'percentiles=(0.01, 0.99), response_method="decision_function")\n'
            'grid, curve = pd_age["grid_values"][0], pd_age["average"][0]',
            ("agrees with the true effect of age by only",)),
    Mistake("recovered-shape", "the whole result, not its entries",
            'pd_age = partial_dependence(boosting, X_test, ["age"], grid_resolution=30, percentiles=(0.01, 0.99), '
            'response_method="decision_function")\n'
            'grid, curve = pd_age["grid_values"], pd_age["average"]',
            ("one array per feature",)),
    # ---- Exercise 5: read the two-feature partial dependence -----------------------------------------------
    Mistake("read-interaction", "read the top row as the riskiest (long employment)", 'answer = "b"',
            ("bluer",), to_the_end=True),
    Mistake("read-interaction", "saw parallel contours (no interaction)", 'answer = "c"', ("add up",)),
    Mistake("read-interaction", "saw no effect of the loan", 'answer = "d"', ("the loan matters",)),
    Mistake("read-interaction", "answered with the option's text", 'answer = "short employment"',
            ("is not one of the options",)),
    # ---- Exercise 6: which partial dependence is unreliable? -----------------------------------------------
    Mistake("unreliable-pd", "blamed the bend in age", 'answer = "a"', ("any shape",), to_the_end=True),
    Mistake("unreliable-pd", "blamed the many values of branch_id", 'answer = "c"', ("impurity",)),
    Mistake("unreliable-pd", "took fanning ICE curves for an unreliable average", 'answer = "d"',
            ("hides differences", "real applicants")),
    Mistake("unreliable-pd", "chose two options", 'answer = "b, d"', ("is not one of the options",)),
]
