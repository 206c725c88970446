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


def png_markdown(png: bytes, alt: str) -> dg.MarkdownMetadataValue:
    """A PNG embedded in markdown metadata so the UI shows the chart inline."""
    import base64

    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def markdown_table(frame: pd.DataFrame, float_format: str = "{:.3f}") -> str:
    """A pipe table (no extra dependency) with floats formatted."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    lines = [header, rule]
    for row in frame.itertuples(index=False):
        cells = [float_format.format(v) if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
