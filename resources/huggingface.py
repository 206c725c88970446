"""The Hugging Face Hub as a Dagster resource (token from the environment, short timeouts)."""

from __future__ import annotations

from typing import Optional

import dagster as dg
from pydantic import Field

from tr_gemma.errors import SourceUnavailableError


class HuggingFaceHub(dg.ConfigurableResource):
    """Access to the Hugging Face Hub. `token` comes from `HF_TOKEN` via `dg.EnvVar`, never config."""

    token: Optional[str] = Field(
        default=None, description="Hub token; set HF_TOKEN in the environment (gated repos need it)."
    )
    timeout_s: float = Field(
        default=10.0, description="Seconds before an unanswered Hub request counts as unreachable."
    )
    offline: bool = Field(
        default=False, description="Refuse every Hub call at once (air-gapped machines)."
    )

    def load_instructions(
        self, dataset_id: str, revision: str, split: str, alternatives: str
    ):
        """The instruction data set as a DataFrame plus the commit sha it was read at."""
        self.refuse_if_offline(f"dataset '{dataset_id}'", alternatives)
        from tr_gemma.hub_instructions import load_hub_instructions

        return load_hub_instructions(
            dataset_id, revision, self.token, split, self.timeout_s, alternatives
        )

    def refuse_if_offline(self, what: str, alternatives: str) -> None:
        if self.offline:
            raise SourceUnavailableError(
                f"Cannot load Hugging Face Hub {what}: the hub resource is configured offline. "
                f"{alternatives}",
                retryable=False,
            )
