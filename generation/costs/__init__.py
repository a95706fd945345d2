"""Money and tokens: the price table, token counts, the --max_cost budget and the dry-run estimates.

May import: common.
"""
