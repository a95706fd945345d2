"""Data in and out: benchmark loading, reading and saving datasets, checkpoints and locks, row ranges and Ray shards,
merging shards.

May import: common.
"""
