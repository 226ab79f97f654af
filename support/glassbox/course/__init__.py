"""Course tooling: labs/ generated from solutions/ (``build``), executing solutions (``execute``),
and the learner's progress (``progress``)."""
