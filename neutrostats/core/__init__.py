"""Foundations shared by every layer: input checks, the date reader, JSON values and safe file output.

Nothing here imports from the rest of the package.
"""
