"""Retry policy for assets that reach the Hugging Face Hub: transient network errors only.

Failures that retrying cannot fix (gated repo, wrong id or revision, bad input) are raised as
dg.Failure(allow_retries=False), which skips this policy.
"""

import dagster as dg

HUB_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
