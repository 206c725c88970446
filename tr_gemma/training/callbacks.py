"""Trainer callbacks: stop on a non-finite or diverging loss, and stream metrics out."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from transformers import TrainerCallback


class NonFiniteLossError(RuntimeError):
    """Training produced NaN/inf or diverged; the message carries the step number."""


class LossGuard(TrainerCallback):
    """Raise at the first NaN/inf loss or gradient norm, or when loss grows far above its start.

    The Trainer's own `logging_nan_inf_filter` would hide such values; it is switched off and
    this guard stops the run instead.
    """

    def __init__(self, divergence_factor: float = 4.0, patience: int = 3):
        self.divergence_factor = divergence_factor
        self.patience = patience
        self.first_loss: float | None = None
        self.strikes = 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        for key in ("loss", "grad_norm"):
            value = logs.get(key)
            if value is not None and not math.isfinite(float(value)):
                raise NonFiniteLossError(
                    f"non-finite {key} ({value}) at step {state.global_step}; training stopped. "
                    "Lower the learning rate or check the data (bf16 is required for Gemma 3)."
                )
        loss = logs.get("loss")
        if loss is None:
            return
        if self.first_loss is None:
            self.first_loss = float(loss)
            return
        self.strikes = self.strikes + 1 if loss > self.divergence_factor * self.first_loss else 0
        if self.strikes >= self.patience:
            raise NonFiniteLossError(
                f"loss diverged at step {state.global_step}: {loss:.3f} vs {self.first_loss:.3f} at the "
                f"start ({self.patience} logs above {self.divergence_factor}x); lower the learning rate."
            )


class MetricsStream(TrainerCallback):
    """Adds tokens/s and peak memory to each log and hands it to `emit` (Pipes, a test list...)."""

    def __init__(self, emit: Callable[[dict], None], peak_memory_gib: Callable[[], float]):
        self.emit = emit
        self.peak_memory_gib = peak_memory_gib
        self.last_time: float | None = None
        self.last_tokens = 0
        self.speeds: list[float] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.last_time = time.perf_counter()
        self.last_tokens = state.num_input_tokens_seen

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if "loss" not in logs:
            self.emit({"step": state.global_step, "max_steps": state.max_steps, **logs})
            return
        now = time.perf_counter()
        tokens = state.num_input_tokens_seen
        elapsed = now - (self.last_time or now)
        if elapsed > 0 and tokens > self.last_tokens:
            logs["tokens_per_second"] = (tokens - self.last_tokens) / elapsed
            self.speeds.append(logs["tokens_per_second"])
        self.last_time, self.last_tokens = now, tokens
        logs["peak_memory_gib"] = self.peak_memory_gib()
        self.emit({"step": state.global_step, "max_steps": state.max_steps, **logs})
