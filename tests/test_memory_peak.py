"""The allocator-trace replay behind benchmarks/memory_peak.py finds the peak and who holds it."""

from benchmarks.memory_peak import call_site, live_at_peak


def _frame(path: str, line: int, name: str) -> dict:
    return {"filename": path, "line": line, "name": name}


HEAD = [_frame("/x/torch/nn/functional.py", 1, "linear"), _frame("/x/site-packages/trl/trainer/utils.py", 7, "fused_head")]
LAYER = [_frame("/x/site-packages/transformers/models/gemma3/modeling_gemma3.py", 9, "forward")]


def test_live_at_peak_reports_the_blocks_alive_at_the_highest_total_after_training_starts():
    events = [
        {"action": "alloc", "addr": 1, "size": 900, "frames": LAYER},  # model load: freed before training
        {"action": "free_requested", "addr": 1, "size": 900},
        {"action": "alloc", "addr": 2, "size": 100, "frames": LAYER},
        {"action": "alloc", "addr": 3, "size": 300, "frames": HEAD},
        {"action": "free_requested", "addr": 3, "size": 300},
        {"action": "alloc", "addr": 4, "size": 50, "frames": HEAD},
    ]
    report = live_at_peak(events, already_allocated=2**30, from_index=2)
    assert report["peak_event_index"] == 3
    assert report["peak_gib"] == (2**30 + 400) / 2**30
    sites = {g["site"]: g["blocks"] for g in report["by_site"]}
    assert sites == {"trl/trainer/utils.py:7 fused_head": 1, "transformers/models/gemma3/modeling_gemma3.py:9 forward": 1}
    assert report["largest_blocks"][0]["site"].startswith("trl/trainer/utils.py")


def test_call_site_skips_torch_frames_and_says_when_none_is_known():
    assert call_site(HEAD) == "trl/trainer/utils.py:7 fused_head"
    assert call_site([_frame("/x/torch/autograd/graph.py", 3, "backward")]) == "(torch internals or no Python frame)"
