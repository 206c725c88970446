"""Talking to the Hugging Face Hub: fast reachability probes and errors a person can act on.

Every Hub call in the project goes through `probe_repo` first. It asks the Hub API for the repo at
the pinned revision with a short timeout, so an offline machine, a gated repo or a typo fails in
seconds with a message that says what to do, instead of after a long download retry loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from tr_gemma.errors import SourceUnavailableError

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RepoRevision:
    repo_id: str
    requested_revision: str
    sha: str  # the full commit the requested revision resolved to


def probe_repo(
    repo_id: str,
    revision: str,
    repo_type: str,
    token: str | None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    alternatives: str = "",
) -> RepoRevision:
    """Resolve `revision` of a Hub repo to its commit sha, or raise `SourceUnavailableError`."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        if repo_type == "dataset":
            info = api.dataset_info(repo_id, revision=revision, timeout=timeout_s, token=token)
        else:
            info = api.model_info(repo_id, revision=revision, timeout=timeout_s, token=token)
    except Exception as exc:  # classified below; anything else is re-raised unchanged
        raise describe_hub_error(exc, repo_id, revision, repo_type, alternatives, token_set=bool(token)) from None
    return RepoRevision(repo_id=repo_id, requested_revision=revision, sha=info.sha or revision)


def describe_hub_error(
    exc: BaseException, repo_id: str, revision: str, repo_type: str, alternatives: str = "",
    token_set: bool | None = None,
) -> BaseException:
    """Turn a huggingface_hub / network exception into a `SourceUnavailableError`.

    The token is never part of the message: only the repo, the revision and the reason.
    `token_set=False` says the request went without HF_TOKEN, the usual cause of a gated or
    "missing" repo, so the message tells how to set it.
    """
    from huggingface_hub import errors as hub_errors

    what = f"Hugging Face Hub {repo_type} '{repo_id}' at revision '{revision}'"
    tail = f" {alternatives}" if alternatives else ""
    url = f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"
    no_token = (
        " HF_TOKEN is not set: create a read token at https://huggingface.co/settings/tokens and "
        "export HF_TOKEN=<token> in the environment that starts Dagster."
        if token_set is False else ""
    )
    if isinstance(exc, hub_errors.OfflineModeIsEnabled):
        return SourceUnavailableError(
            f"Cannot load {what}: offline mode is on (HF_HUB_OFFLINE=1).{tail}", retryable=False
        )
    if isinstance(exc, hub_errors.GatedRepoError):
        return SourceUnavailableError(
            f"Cannot load {what}: the repository is gated. Accept its licence on {url} with the "
            f"account that owns HF_TOKEN, and set HF_TOKEN in the environment.{no_token}{tail}",
            retryable=False,
        )
    if isinstance(exc, hub_errors.RevisionNotFoundError):
        return SourceUnavailableError(
            f"Cannot load {what}: the revision does not exist. Check the pinned revision.{tail}",
            retryable=False,
        )
    if isinstance(exc, hub_errors.RepositoryNotFoundError):
        return SourceUnavailableError(
            f"Cannot load {what}: the repository does not exist or is private (check the id's "
            f"spelling, and HF_TOKEN for private repos).{no_token}{tail}",
            retryable=False,
        )
    if isinstance(exc, hub_errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return SourceUnavailableError(
                f"Cannot load {what}: access denied (HTTP {status}); check HF_TOKEN.{no_token}{tail}",
                retryable=False,
            )
        return SourceUnavailableError(
            f"Cannot load {what}: the Hub answered HTTP {status}.{tail}", retryable=True
        )
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"TimeoutException", "Timeout", "ConnectTimeout", "ReadTimeout"} or isinstance(exc, TimeoutError):
        # A slow answer may pass: the asset's retry policy tries again with backoff.
        return SourceUnavailableError(
            f"Cannot load {what}: the Hub did not answer in time ({type(exc).__name__}).{tail}", retryable=True
        )
    if names & {"ConnectError", "ConnectionError", "NetworkError", "TransportError", "gaierror"} or isinstance(
        exc, ConnectionError
    ):
        # No route or no DNS: this machine has no Hub access; retrying in seconds would not help.
        return SourceUnavailableError(
            f"Cannot load {what}: the Hub is unreachable ({type(exc).__name__}: {exc}).{tail}", retryable=False
        )
    return exc
