"""What a user wants to know about a checkpoint folder, read from its files without loading it."""

from __future__ import annotations

import hashlib
import json
import struct
from collections import Counter
from math import prod
from pathlib import Path


def safetensors_header(path: Path) -> dict:
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        return json.loads(handle.read(length))


def summarize_checkpoint(folder: Path) -> dict:
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    text = config.get("text_config", config)
    parameters = 0
    dtypes: Counter[str] = Counter()
    digest = hashlib.sha256()
    for shard in sorted(folder.glob("*.safetensors")):
        header = safetensors_header(shard)
        digest.update(json.dumps(header, sort_keys=True).encode())  # names, shapes and offsets
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            count = prod(entry["shape"])
            parameters += count
            dtypes[entry["dtype"]] += count
    return {
        "model_type": config.get("model_type"),
        "parameters": parameters,
        "layers": text.get("num_hidden_layers"),
        "hidden_size": text.get("hidden_size"),
        "attention_heads": text.get("num_attention_heads"),
        "kv_heads": text.get("num_key_value_heads"),
        "vocab_size": text.get("vocab_size"),
        "context_length": text.get("max_position_embeddings"),
        "sliding_window": text.get("sliding_window"),
        "dtype": dtypes.most_common(1)[0][0] if dtypes else "unknown",
        "weights_digest": "sha256:" + digest.hexdigest()[:16],
    }
