"""`prefetched_offload`: a checkpointed layer's kept tensors go to pinned host memory on a side
stream and come back one layer ahead of backward, bit for bit, whatever the GPU memory they came
from holds by then. The whole-model side (loss and gradients against PEFT with the lever on) is
in test_train_parity.py."""

import pytest
import torch

from tr_gemma.training import prefetched_offload
from tr_gemma.training.prefetched_offload import HostStash

pytestmark = pytest.mark.gpu


def _layer(seed: int) -> list:
    generator = torch.Generator(device="cuda").manual_seed(seed)
    return [torch.randn(4096, 1536, device="cuda", dtype=torch.bfloat16, generator=generator) for _ in range(3)]


def test_tensors_come_back_bitwise_and_one_layer_ahead():
    if not torch.cuda.is_available():
        pytest.fail("GPU test run without a CUDA device")
    layers = [_layer(seed) for seed in range(4)]
    expected = [[t.cpu() for t in tensors] for tensors in layers]
    stashes = [HostStash(tensors) for tensors in layers]
    del layers  # the allocator may hand their memory out again: only the stashes' copies remain
    scribble = [torch.full((4096, 1536), 7.0, device="cuda", dtype=torch.bfloat16) for _ in range(12)]
    assert stashes[-1].on_gpu is not None and all(s.on_gpu is None for s in stashes[:-1])
    for index in reversed(range(4)):
        got = stashes[index].take()
        if index:  # taking a layer starts fetching the one backward needs next
            assert stashes[index - 1].fetched is not None
        for tensor, want in zip(got, expected[index]):
            assert torch.equal(tensor.cpu(), want), index
    assert all(torch.equal(t, torch.full_like(t, 7.0)) for t in scribble)


def test_a_layer_taken_twice_is_an_error():
    if not torch.cuda.is_available():
        pytest.fail("GPU test run without a CUDA device")
    stash = HostStash(_layer(9))
    stash.take()
    with pytest.raises(RuntimeError, match="taken twice"):
        stash.take()


def test_the_compute_stream_does_not_wait_for_the_copies_to_host():
    """Forward only queues the copies on the side stream: work queued after it on the compute
    stream finishes while the copy still runs (it would finish after the copy if the stream waited)."""
    if not torch.cuda.is_available():
        pytest.fail("GPU test run without a CUDA device")
    big = [torch.randn(2, 8192, 21504, device="cuda", dtype=torch.bfloat16)]  # 704 MB: about 13 ms at 55 GB/s
    torch.cuda.synchronize()
    HostStash(big)
    marker = torch.cuda.Event()
    marker.record()
    marker.synchronize()
    side = prefetched_offload._STREAMS[torch.cuda.current_device()]
    assert not side.query(), "the copy to host ended before the compute stream went on"
    side.synchronize()
