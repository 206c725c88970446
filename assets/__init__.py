"""Dagster assets, one module per pipeline stage; asset checks live next to their asset."""
