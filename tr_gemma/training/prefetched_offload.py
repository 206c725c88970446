"""Host offloading of what a kept-outputs checkpoint keeps, fetched back one layer ahead (the
`prefetch_kept_outputs` recipe lever).

trl's offloading context copies a saved tensor back to the GPU only when backward unpacks it, and
makes the compute stream wait for that copy: each decoder layer's backward starts with its input
and kept outputs crossing PCIe while the GPU idles. With `keep_projection_outputs` that is 3 to 4
tokens x hidden tensors a layer (27B, 8 of 62 layers, H100: the same stack without offloading
ran 6.5% faster, 8.5% with up_proj's output kept too; benchmarks/results/
train_step_27b_l8_offload_keptup.json).

Here the checkpoint moves its tensors itself, on a side stream:
  - forward: each layer's tensors are copied to pinned host memory, the compute stream never waits
    (the GPU copies are marked used by the side stream, so the allocator holds them until the copy ends);
  - backward: taking a layer's tensors starts the copy back of the layer before it (the next one
    backward needs), so it crosses PCIe while this one computes;
  - the newest layer keeps its GPU copies: its backward comes first, right after the forward.
At most two layers' tensors are on the GPU in backward, as with trl's context (memory.py's
OFFLOADED_LAYERS_KEPT). Values are copies: loss and gradients are unchanged.
"""

from __future__ import annotations

import weakref

_STREAMS: dict = {}  # device index -> the side stream of the copies
_NEWEST = None  # the last stash made: its GPU copies stay until a newer one exists


def _side_stream(device):
    import torch

    if device.index not in _STREAMS:
        _STREAMS[device.index] = torch.cuda.Stream(device)
    return _STREAMS[device.index]


class HostStash:
    """One checkpointed layer's saved tensors, in pinned host memory (and, while newest, on the GPU)."""

    def __init__(self, tensors):
        import torch

        global _NEWEST
        self.device = tensors[0].device
        side, compute = _side_stream(self.device), torch.cuda.current_stream(self.device)
        side.wait_stream(compute)  # the tensors are the compute stream's work
        with torch.cuda.stream(side):
            self.host = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True).copy_(t, non_blocking=True)
                         for t in tensors]
        for t in tensors:
            t.record_stream(side)  # not reused by the allocator before the copy ends
        self.on_gpu, self.fetched, self.ready = list(tensors), None, None
        self.previous = None if _NEWEST is None else weakref.ref(_NEWEST)
        if _NEWEST is not None:
            _NEWEST.on_gpu = None
        _NEWEST = self

    def fetch(self) -> None:
        """Start the copy back to the GPU (once; nothing to do while the GPU copies are kept)."""
        import torch

        if self.on_gpu is not None or self.fetched is not None or self.host is None:
            return
        side = _side_stream(self.device)
        with torch.cuda.stream(side):  # allocated from the side stream's pool, written in its order
            self.fetched = [h.to(self.device, non_blocking=True) for h in self.host]
            self.ready = side.record_event()

    def take(self) -> list:
        """The tensors on the GPU, ready for the compute stream; starts fetching the layer before."""
        import torch

        self.fetch()  # this one first: the side stream copies in order
        previous = self.previous() if self.previous is not None else None
        if previous is not None:
            previous.fetch()
        if self.on_gpu is not None:
            tensors = self.on_gpu
        elif self.fetched is not None:
            compute = torch.cuda.current_stream(self.device)
            compute.wait_event(self.ready)
            for t in self.fetched:
                t.record_stream(compute)  # freed in the side stream's pool only after the compute stream's use
            tensors = self.fetched
        else:
            raise RuntimeError("a checkpointed layer's offloaded tensors were taken twice (backward ran twice "
                               "through one graph?)")
        self.on_gpu = self.fetched = self.host = None
        return tensors
