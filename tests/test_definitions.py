"""The code location loads fast, without heavy ML imports, with the expected lineage."""

import subprocess
import sys

import dagster as dg


def test_definitions_load_with_lineage_raw_clean_chat():
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw_instructions", "clean_instructions", "gemma_chat_dataset"} <= keys
    assert graph.get(dg.AssetKey("clean_instructions")).parent_keys == {dg.AssetKey("raw_instructions")}
    assert graph.get(dg.AssetKey("gemma_chat_dataset")).parent_keys == {dg.AssetKey("clean_instructions")}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, f"{key} needs a docstring"
        assert node.group_name != "default", f"{key} needs a group"
    defs.resolve_job_def("data_job")


def test_code_location_imports_no_torch_transformers_or_datasets():
    code = (
        "import sys; import pipelines.definitions; "
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'trl', 'peft') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_project_packages_resolve_inside_this_repository():
    """Guards against another installed distribution shadowing our generic package names."""
    from pathlib import Path

    import assets
    import pipelines
    import resources

    root = Path(__file__).resolve().parents[1]
    for package in (assets, pipelines, resources):
        assert Path(package.__file__).resolve().is_relative_to(root)


def test_pyproject_and_workspace_point_at_the_same_module():
    import tomllib
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    tool = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["dagster"]
    workspace = yaml.safe_load((root / "workspace.yaml").read_text())["load_from"][0]["python_module"]
    assert tool["module_name"] == workspace["module_name"] == "pipelines.definitions"
    assert tool["code_location_name"] == workspace["location_name"]
