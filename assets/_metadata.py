"""Small helpers that turn data into Dagster metadata a person can read in the UI."""


import dagster as dg
import pandas as pd


def preview_table(frame: pd.DataFrame, columns: list[str], rows: int = 5, width: int = 120) -> dg.TableMetadataValue:
    """The first rows as a UI table, long texts shortened."""
    records = [
        dg.TableRecord({c: _shorten(row[c], width) for c in columns})
        for row in frame.head(rows).to_dict("records")
    ]
    schema = dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in columns])
    return dg.MetadataValue.table(records=records, schema=schema)


def _shorten(value, width: int) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ⏎ ")
    return text if len(text) <= width else text[: width - 1] + "…"
