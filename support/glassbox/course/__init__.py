"""Course tooling: labs/ generated from solutions/ (``build``), executing solutions (``execute``),
the learner's progress (``progress``) and the learner's copies of labs/ that updates never overwrite (``workspace``)."""
