"""Loss curve PNG for the training report."""

from __future__ import annotations


def loss_curve_png(history: list[dict], eval_before: float, eval_after: float) -> bytes:
    from tr_gemma.charts import png_bytes, pyplot

    fig, ax = pyplot().subplots(figsize=(7, 3.5), dpi=110)
    ax.plot([h["step"] for h in history], [h["loss"] for h in history], label="train loss")
    if history:
        last = history[-1]["step"]
        ax.scatter([0, last], [eval_before, eval_after], color="#c44e52", zorder=3, label="held-out loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title("QLoRA training")
    ax.legend()
    fig.tight_layout()
    return png_bytes(fig)
