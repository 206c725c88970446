"""Local artifact storage: one folder per asset (and partition), written atomically."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from tr_gemma.atomic_io import atomic_file
from tr_gemma.errors import DiskFullError


class ArtifactStore(dg.ConfigurableResource):
    """Where assets keep their files: `<root>/<asset>/<partition>/`."""

    root: str = Field(default="artifacts", description="Folder for asset outputs (relative to the working directory).")

    def folder(self, asset_key: dg.AssetKey, partition_key: str | None = None) -> Path:
        folder = Path(self.root).resolve().joinpath(*asset_key.path)
        if partition_key:
            folder = folder / partition_key
        folder.mkdir(parents=True, exist_ok=True)
        return folder


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores pandas DataFrames as parquet in the artifact store; never leaves a partial file."""

    store: ArtifactStore

    def _path(self, context: dg.InputContext | dg.OutputContext) -> Path:
        partition = context.partition_key if context.has_partition_key else None
        return self.store.folder(context.asset_key, partition) / "data.parquet"

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        path = self._path(context)
        try:
            with atomic_file(path) as staging:
                obj.to_parquet(staging, index=False)
        except DiskFullError as exc:  # a retry in seconds would fill the same disk again
            raise dg.Failure(str(exc), allow_retries=False) from exc
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        path = self._path(context)
        if not path.is_file():
            raise dg.Failure(
                f"{context.asset_key.to_user_string()} has no stored output at {path}; "
                "materialize it first.",
                allow_retries=False,
            )
        return pd.read_parquet(path)
