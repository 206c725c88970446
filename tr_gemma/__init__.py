"""Dagster-free core of the Turkish Gemma 3 pipeline.

Everything here is plain Python that the Dagster assets (and the out-of-process trainer and
evaluator) call. Heavy libraries (torch, transformers, datasets) are imported inside functions,
never at module import, so the code location stays fast to load.
"""
