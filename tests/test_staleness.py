"""Staleness: a new data revision upstream marks the downstream assets stale (as the UI shows)."""

import dagster as dg
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from assets.instructions import clean_instructions, raw_instructions
from tests.conftest import instruction_row, write_jsonl


def status(instance, key: str) -> StaleStatus:
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
    return resolver.get_status(dg.AssetKey(key))


def test_new_data_revision_marks_clean_instructions_stale(resources, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([raw_instructions, clean_instructions], resources=resources, instance=instance).success
    assert status(instance, "clean_instructions") == StaleStatus.FRESH

    newer = write_jsonl(tmp_path / "yeni.jsonl", [instruction_row(output="Yeni veri.")])
    assert dg.materialize([raw_instructions], resources=resources, instance=instance,
                          run_config={"ops": {"raw_instructions": {"config": {"source": "path", "path": str(newer)}}}}).success
    assert status(instance, "clean_instructions") == StaleStatus.STALE
