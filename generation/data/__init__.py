"""Data in and out: benchmark loading, reading and saving datasets, checkpoints and locks, row ranges and Ray shards
(the cluster preflight, the environment every shard gets), merging shards.

May import: common.
"""
