"""The Dagster UI in a real browser: `dagster dev` on 127.0.0.1, headless Chromium (Playwright).

Screenshots go to test-output/ui/ (kept by CI as artifacts of the run).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-output" / "ui"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
GROUPS = {
    "data": ["raw_instructions", "clean_instructions", "gemma_chat_dataset"],
    "analysis": ["token_efficiency"],
    "model": ["base_model"],
    "training": ["qlora_adapter"],
    "evaluation": ["tr_mmlu_questions", "tr_mmlu_scores", "promoted_adapter"],
    "hand_off": ["merged_model", "sample_answers", "model_card"],
}
LOCATION = "pipelines.definitions"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(base: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{base}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory, gemma_tokenizer_dir):
    work = tmp_path_factory.mktemp("ui")
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    dagster = str(Path(sys.executable).with_name("dagster"))
    log = open(work / "dagster_dev.log", "w")
    process = subprocess.Popen([dagster, "dev", "-m", "pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)],
                               cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if graphql(base, "{ version }"):
                break
        except Exception:
            assert process.poll() is None, (work / "dagster_dev.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "dagster dev did not come up in 180 s"
            time.sleep(1)
    yield base, work
    os.killpg(process.pid, 15)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:  # dagster dev's children can outlast 60 s on a loaded machine
        os.killpg(process.pid, 9)
        process.wait(timeout=30)


def dismiss_dialogs(page) -> None:
    """Close the dialogs Dagster opens over the page (the first-visit community dialog can open
    seconds after load on a busy machine, and its backdrop then swallows every click)."""
    backdrop = page.locator(".bp5-overlay-backdrop")
    for _ in range(3):
        try:
            backdrop.first.wait_for(state="visible", timeout=3_000)
        except Exception:
            return  # no dialog open
        for name in ("Skip", "Dismiss", "Close", "Cancel"):
            button = page.get_by_role("button", name=name)
            if button.count() and button.first.is_visible():
                button.first.click()
                break
        else:
            page.keyboard.press("Escape")
        backdrop.first.wait_for(state="hidden", timeout=10_000)


@pytest.fixture(scope="module")
def page(dagster_ui):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(dagster_ui[0], wait_until="networkidle")
        dismiss_dialogs(page)
        yield page
        browser.close()


def test_asset_graph_shows_every_asset_and_the_lineage(dagster_ui, page):
    base, _ = dagster_ui
    page.goto(f"{base}/asset-groups", wait_until="networkidle")
    for group in GROUPS:
        page.get_by_text(group, exact=True).first.wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "global_lineage.png"))
    for group, assets in GROUPS.items():
        page.goto(f"{base}/locations/{LOCATION}/asset-groups/{group}", wait_until="networkidle")
        for asset in assets:
            page.get_by_text(asset, exact=True).first.wait_for(timeout=60_000)
        page.screenshot(path=str(SHOTS / f"group_{group}.png"))
    nodes = graphql(base, "{ assetNodes { assetKey { path } dependencyKeys { path } } }")["assetNodes"]
    parents = {n["assetKey"]["path"][0]: {d["path"][0] for d in n["dependencyKeys"]} for n in nodes}
    assert parents["clean_instructions"] == {"raw_instructions"}
    assert parents["gemma_chat_dataset"] == {"clean_instructions"}
    assert {"gemma_chat_dataset", "base_model"} <= parents["qlora_adapter"]
    assert "qlora_adapter" in parents["tr_mmlu_scores"]


def test_materialize_data_assets_from_the_ui_and_see_their_metadata(dagster_ui, page):
    base, work = dagster_ui
    page.goto(f"{base}/locations/{LOCATION}/asset-groups/data", wait_until="networkidle")
    page.get_by_text("gemma_chat_dataset", exact=True).first.wait_for(timeout=60_000)
    dismiss_dialogs(page)
    page.get_by_role("button", name="Materialize all").first.click()
    page.screenshot(path=str(SHOTS / "launched.png"))
    deadline = time.monotonic() + 600
    status = None
    while time.monotonic() < deadline:
        runs = graphql(base, "{ runsOrError { ... on Runs { results { runId status } } } }")["runsOrError"]["results"]
        status = runs[0]["status"] if runs else None
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(3)
    assert status == "SUCCESS", (work / "dagster_dev.log").read_text()[-3000:]

    page.goto(f"{base}/assets/clean_instructions", wait_until="networkidle")
    page.get_by_text("rejected_duplicate").first.wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "clean_instructions_metadata.png"), full_page=True)
    page.goto(f"{base}/assets/gemma_chat_dataset", wait_until="networkidle")
    page.get_by_text("train_rows").first.wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "gemma_chat_dataset_metadata.png"), full_page=True)
    assert (SHOTS / "clean_instructions_metadata.png").stat().st_size > 10_000
