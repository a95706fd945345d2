"""LM judges: the judge registry table, prompts and verdict parsing, and judging through API or local backends.

May import: backends, costs, data, common.
"""
