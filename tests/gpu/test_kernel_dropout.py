"""The LoRA kernels' own dropout (`dropout_in_lora_kernels`) is torch's dropout, mask for mask.

Each kernel redraws the mask from torch's Philox stream; these tests hold it against
`torch.native_dropout` on the same generator state (the masks, the generator's offset after, the
next draw), and the three kernels' results against the same computation written with torch's
mask."""

import pytest
import torch

from tr_gemma.training import kernel_dropout

pytestmark = pytest.mark.gpu

SHAPES = [(512, 256), (8192, 5376), (8192, 21504), (4093, 4096), (24, 1152)]


def _torch_and_kernel_masks(shape, p: float, seed: int, skip: int):
    torch.cuda.manual_seed(seed)
    if skip:  # move the generator along, as earlier layers' draws do
        torch.native_dropout(torch.ones(skip, device="cuda", dtype=torch.bfloat16), 0.5, True)
    x = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
    state = torch.cuda.get_rng_state()
    dropped, mask = torch.native_dropout(x, p, True)
    after_torch = torch.cuda.default_generators[0].get_offset()
    torch.cuda.set_rng_state(state)
    assert kernel_dropout.usable(x)
    drawn = kernel_dropout.draw(x, p)
    after_kernel = torch.cuda.default_generators[0].get_offset()
    return x, dropped, mask, drawn, after_torch, after_kernel


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_kernel_masks_are_torch_masks(shape, p):
    if not torch.cuda.is_available():
        pytest.fail("GPU test run without a CUDA device")
    x, dropped, mask, drawn, after_torch, after_kernel = _torch_and_kernel_masks(shape, p, seed=7, skip=4096 * 3 + 8)
    mine = kernel_dropout.mask_bytes(shape, drawn, x.device)
    assert after_kernel == after_torch, "the generator must move as torch's dropout moves it"
    differing = (mine != mask).sum().item()
    print(f"MASK {shape} p={p}: {differing} of {mask.numel()} differ; kept {mine.float().mean().item():.4f}")
    assert differing == 0
    # what the kernels compute from each kept element: x * scale in float, rounded once
    assert torch.equal(dropped, torch.where(mask, (x.float() * drawn.scale).to(x.dtype), 0).to(x.dtype))


@pytest.mark.parametrize("shape", [(512, 256), (8192, 5376), (2048, 21504)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_kernels_compute_what_torch_computes_with_its_mask(shape):
    if not torch.cuda.is_available():
        pytest.fail("GPU test run without a CUDA device")
    x, dropped, mask, drawn, _, _ = _torch_and_kernel_masks(shape, 0.1, seed=3, skip=0)
    a = torch.randn(32, shape[1], device="cuda", dtype=torch.bfloat16) * 0.02
    g_down = torch.randn(shape[0], 32, device="cuda", dtype=torch.bfloat16)

    down = kernel_dropout.lora_down(x, a, drawn)
    torch.testing.assert_close(down, dropped @ a.t(), rtol=1.6e-2, atol=1e-2)

    grad_a = kernel_dropout.lora_grad_a(x, g_down, drawn)
    expected = g_down.t() @ dropped
    torch.testing.assert_close(grad_a.float(), expected.float(), rtol=1.6e-2, atol=2e-2 * expected.float().abs().max().item())

    grad_x = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
    expected_x = grad_x.float() + ((g_down @ a) * mask).float() * drawn.scale
    kernel_dropout.add_lora_grad_x(grad_x, g_down, a, drawn)
    torch.testing.assert_close(grad_x.float(), expected_x, rtol=1.6e-2, atol=1e-2)


def test_inputs_torch_would_draw_otherwise_keep_torch_dropout():
    if not torch.cuda.is_available():
        pytest.fail("GPU test run without a CUDA device")
    x = torch.randn(64, 257, device="cuda", dtype=torch.bfloat16)  # width not a multiple of 4
    assert not kernel_dropout.usable(x)
    y = torch.randn(65, 264, device="cuda", dtype=torch.bfloat16).view(-1)[1:65 * 256 + 1].view(65, 256)  # 2-byte offset
    assert not kernel_dropout.usable(y)
    assert not kernel_dropout.usable(torch.randn(64, 256, device="cuda", dtype=torch.float32))


@pytest.mark.parametrize("shape", [(512, 256), (8192, 5376), (2048, 21504), (4093, 4096)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
def test_bits_the_forward_kernel_stores_are_the_mask(shape):
    """`kernel_dropout_bitmask`: lora_down stores torch's mask at one bit per element, element 8b + j
    in bit j of byte b, and backward's kernels read back exactly what they would have drawn."""
    if not torch.cuda.is_available():
        pytest.fail("GPU test run without a CUDA device")
    x, _, mask, drawn, _, _ = _torch_and_kernel_masks(shape, 0.1, seed=5, skip=4096)
    a = torch.randn(32, shape[1], device="cuda", dtype=torch.bfloat16) * 0.02
    bits = kernel_dropout.bits_for(x)
    down_with_bits = kernel_dropout.lora_down(x, a, drawn, bits)
    assert torch.equal(down_with_bits, kernel_dropout.lora_down(x, a, drawn))
    unpacked = (bits.unsqueeze(-1) >> torch.arange(8, dtype=torch.uint8, device="cuda")) & 1
    assert torch.equal(unpacked.reshape(shape).bool(), mask)
    assert torch.equal(kernel_dropout.mask_bytes(shape, drawn, x.device, read_bits=bits), mask)

    g_down = torch.randn(shape[0], 32, device="cuda", dtype=torch.bfloat16)
    assert torch.equal(kernel_dropout.lora_grad_a(x, g_down, drawn, bits), kernel_dropout.lora_grad_a(x, g_down, drawn))
    drawn_x = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
    read_x = drawn_x.clone()
    kernel_dropout.add_lora_grad_x(drawn_x, g_down, a, drawn)
    kernel_dropout.add_lora_grad_x(read_x, g_down, a, drawn, bits)
    assert torch.equal(read_x, drawn_x)
