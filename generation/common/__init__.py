"""Common ground of every step: argument types, one-line user errors, provenance records, JSON-lines record stores.

Imports nothing from the project's other packages.
"""
