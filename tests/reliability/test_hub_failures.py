"""Hub failures: unreachable, gated, wrong id, wrong revision, no HF_TOKEN.

Each fails within seconds, in one attempt (no retry storm), with a message that names the repo and
revision and says what to do. The Hub API call is replaced by one raising what huggingface_hub
raises in each case (this machine cannot reach the Hub; the real offline path is
tests/test_base_model.py and tests/test_sources.py).
"""

import time

import dagster as dg
import httpx2
import pytest
from huggingface_hub import HfApi, errors

from assets._retry import HUB_RETRY
from assets.base_model import base_model
from assets.instructions import raw_instructions
from tests.reliability.conftest import PLANTED_TOKEN, failure_chain
from tr_gemma.hub import describe_hub_error


def _http_error(cls, status: int, url: str):
    return cls(f"{status} Client Error for url {url}", response=httpx2.Response(status, request=httpx2.Request("GET", url)))


MODEL = "google/gemma-3-1b-pt"
DATASET = "malhajar/alpaca-gpt4-tr"
CASES = {
    # name: (asset, raises, token set, config, expected phrases)
    "hub_unreachable": (
        "base_model", lambda url: httpx2.ConnectError("[Errno -3] Temporary failure in name resolution"), True, {},
        [MODEL, "'main'", "the Hub is unreachable", "Use base_model source 'embedded' (270m) or 'path'"],
    ),
    "gated_model": (
        "base_model", lambda url: _http_error(errors.GatedRepoError, 403, url), True, {},
        [MODEL, "the repository is gated", f"Accept its licence on https://huggingface.co/{MODEL}"],
    ),
    "gated_model_without_hf_token": (
        "base_model", lambda url: _http_error(errors.GatedRepoError, 401, url), False, {},
        [MODEL, "the repository is gated", "HF_TOKEN is not set", "https://huggingface.co/settings/tokens"],
    ),
    "wrong_model_id": (
        "base_model", lambda url: _http_error(errors.RepositoryNotFoundError, 404, url), True, {},
        [MODEL, "does not exist or is private", "check the id's spelling"],
    ),
    "wrong_model_revision": (
        "base_model", lambda url: _http_error(errors.RevisionNotFoundError, 404, url), True, {"revision": "v9-typo"},
        [MODEL, "'v9-typo'", "the revision does not exist", "Check the pinned revision"],
    ),
    "wrong_dataset_id": (
        "raw_instructions", lambda url: _http_error(errors.RepositoryNotFoundError, 404, url), True,
        {"dataset_id": "malhajar/alpaca-gpt4-trr"},
        ["malhajar/alpaca-gpt4-trr", "does not exist or is private", "'embedded' or 'path'"],
    ),
    "dataset_without_hf_token": (
        "raw_instructions", lambda url: _http_error(errors.RepositoryNotFoundError, 401, url), False, {},
        [DATASET, "'a6d4c80'", "HF_TOKEN is not set", "'embedded' or 'path'"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hub_failure_is_fast_single_and_says_what_to_do(case, tmp_path, monkeypatch):
    from resources import build_resources

    asset, raises, token_set, config, expected = CASES[case]
    if token_set:
        monkeypatch.setenv("HF_TOKEN", PLANTED_TOKEN)
    else:
        monkeypatch.delenv("HF_TOKEN", raising=False)
    calls = []

    def hub_api(self, repo_id, revision=None, timeout=None, token=None, **kwargs):
        calls.append({"repo_id": repo_id, "revision": revision, "token": token})
        raise raises(f"https://huggingface.co/api/{repo_id}/revision/{revision}")

    monkeypatch.setattr(HfApi, "model_info", hub_api)
    monkeypatch.setattr(HfApi, "dataset_info", hub_api)
    resources = build_resources(artifacts_root=str(tmp_path / "artifacts"), cache_dir=str(tmp_path / "cache"))
    definition, partition = (base_model, "1b") if asset == "base_model" else (raw_instructions, None)

    started = time.monotonic()
    result = dg.materialize([definition], resources=resources, partition_key=partition, raise_on_error=False,
                            run_config={"ops": {asset: {"config": {"source": "hub", **config}}}})
    elapsed = time.monotonic() - started
    assert not result.success
    assert elapsed < 5, f"{case} took {elapsed:.1f} s"
    assert len(calls) == 1, "retried although retrying cannot help"
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert (calls[0]["token"] == PLANTED_TOKEN) is token_set  # the token reached the Hub call...
    message = failure_chain(result)
    assert PLANTED_TOKEN not in message  # ...and never the message
    for phrase in expected:
        assert phrase in message, (phrase, message)


def test_only_a_slow_hub_is_retried_and_the_retries_are_bounded():
    slow = describe_hub_error(httpx2.ReadTimeout("timed out"), MODEL, "main", "model")
    offline = describe_hub_error(errors.OfflineModeIsEnabled("offline"), MODEL, "main", "model")
    assert slow.retryable and not offline.retryable
    assert HUB_RETRY.max_retries == 2 and HUB_RETRY.backoff == dg.Backoff.EXPONENTIAL and HUB_RETRY.delay >= 10
