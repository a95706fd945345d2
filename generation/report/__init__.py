"""Step 4's verifier report: metrics (AUROC, best-of-k, select@1), score columns, rendering and the Weaver export.

May import: grading, data, common.
"""
