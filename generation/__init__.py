"""Weaver's generation stage: generate reasoning samples, grade them, score them with verifiers, report on them.

The four steps are the scripts beside this file; the packages below hold their code by concern (see docs/layout.md).
"""
