"""Publishing the adapter and its model card to the Hugging Face Hub (opt-in).

The repository is created private unless asked otherwise; the token comes from the `hf_hub`
resource (HF_TOKEN through dg.EnvVar) and never appears in a message. Before any upload a short
probe asks the Hub about the repository, so an offline machine fails in seconds with a message that
names the repository and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tr_gemma.hub import DEFAULT_TIMEOUT_S

# Files never uploaded: staging leftovers of atomic writes, hidden files.
IGNORE_PATTERNS = [".*", "*.tmp", "**/.*"]


class HubPublishError(RuntimeError):
    """Publishing failed; ``retryable`` says whether another attempt can help."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Published:
    repo_id: str
    url: str
    commit: str
    private: bool
    created: bool


def check_publish_settings(repo_id: str, token: str | None) -> None:
    """Fails before any work when the settings cannot publish (no network needed)."""
    if not repo_id or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubPublishError(
            f"push_to_hub needs hub_repo_id as '<user or organisation>/<name>' (got '{repo_id}').", retryable=False)
    if not token:
        raise HubPublishError(
            f"push_to_hub to '{repo_id}' needs a Hub token with write access: set HF_TOKEN in the environment "
            "of the Dagster process (it is read through dg.EnvVar).", retryable=False)


def publish_folder(
    folder: Path,
    repo_id: str,
    token: str | None,
    private: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    commit_message: str = "Upload Turkish Gemma 3 QLoRA adapter and model card",
    what_to_do: str = "",
) -> Published:
    """Upload every file of `folder` to the model repo `repo_id` (created if missing)."""
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hub_errors

    check_publish_settings(repo_id, token)
    api = HfApi()
    created = False
    try:
        try:
            info = api.model_info(repo_id, timeout=timeout_s, token=token)
            is_private = bool(info.private)
        except hub_errors.RepositoryNotFoundError:
            api.create_repo(repo_id, token=token, private=private, repo_type="model", exist_ok=True)
            created, is_private = True, private
        commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder), token=token, repo_type="model",
                                   commit_message=commit_message, ignore_patterns=IGNORE_PATTERNS)
    except HubPublishError:
        raise
    except Exception as exc:  # classified below; anything unexpected is re-raised unchanged
        raise describe_publish_error(exc, repo_id, what_to_do) from None
    return Published(repo_id=repo_id, url=f"https://huggingface.co/{repo_id}", commit=str(commit.oid),
                     private=is_private, created=created)


def describe_publish_error(exc: BaseException, repo_id: str, what_to_do: str = "") -> BaseException:
    """A person-readable `HubPublishError` for network and Hub failures (the token is never shown)."""
    from huggingface_hub import errors as hub_errors

    what = f"Cannot publish to the Hugging Face Hub model repo '{repo_id}'"
    tail = f" {what_to_do}" if what_to_do else ""
    if isinstance(exc, hub_errors.OfflineModeIsEnabled):
        return HubPublishError(f"{what}: offline mode is on (HF_HUB_OFFLINE=1).{tail}", retryable=False)
    if isinstance(exc, hub_errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return HubPublishError(
                f"{what}: access denied (HTTP {status}). HF_TOKEN needs write access to '{repo_id}' "
                f"(a fine-grained token must list the repo or its namespace).{tail}", retryable=False)
        return HubPublishError(f"{what}: the Hub answered HTTP {status}.{tail}", retryable=status is None or status >= 500)
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"TimeoutException", "Timeout", "ConnectTimeout", "ReadTimeout"} or isinstance(exc, TimeoutError):
        return HubPublishError(f"{what}: the Hub did not answer in time ({type(exc).__name__}).{tail}", retryable=True)
    if names & {"ConnectError", "ConnectionError", "NetworkError", "TransportError", "gaierror"} or isinstance(
            exc, ConnectionError):
        return HubPublishError(
            f"{what}: the Hub is unreachable from this machine ({type(exc).__name__}: {exc}). Publish from a "
            f"machine with network access.{tail}", retryable=False)
    return exc
