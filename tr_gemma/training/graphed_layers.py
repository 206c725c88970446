"""Each Gemma 3 decoder layer replayed as two CUDA graphs (the `cuda_graph_layers` recipe lever).

At 1B and 4B on an H100 the QLoRA step is bound by the host, not the GPU (docs/benchmarks.md):
a layer's forward, checkpointed recompute and backward issue over a thousand kernels through
Python, autograd and bitsandbytes' ctypes calls, and issuing them takes longer than running
them. A CUDA graph issues a captured layer's kernels in one call. Each layer gets two graphs,
which together are gradient checkpointing:

- forward: the layer under no_grad, which is all a checkpointed layer computes at first;
- backward: the recompute with grad, then autograd's backward to the layer input and its LoRA
  weights.

Only the layer input is kept for backward (as the checkpoint keeps it; offloading moves it).
Graphs replay fixed shapes at fixed addresses, so every micro-batch is copied into one set of
static buffers sized by the recipe (batch x max_length tokens). The unused tail is one more
packed document, kept apart by the varlen attention, whose output is dropped and whose gradient
is zero. LoRA dropout: the backward graph replays under the RNG state the forward graph saw,
as the eager checkpoint does, so the recompute draws the forward's masks.
"""

from __future__ import annotations

import types
import weakref

from tr_gemma.training.layer_input_offload import outside_offloading

# Packed documents one micro-batch may hold to run as graphs (the varlen kernel's boundary
# tensor has a fixed length); a micro-batch with more runs eagerly.
MAX_DOCUMENTS = 128
_ARENAS: "weakref.WeakSet[GraphArena]" = weakref.WeakSet()  # live ones, for the peak-memory figure
WARMUPS = 2  # eager runs on the capture stream first: lazy kernel loads and cuBLAS workspaces stay out of the graph


class GraphArena:
    """Static buffers, memory pool and capture stream that all decoder layers of one model share
    (their graphs replay one after another, so one set of buffers serves them all)."""

    def __init__(self, capacity: int, hidden_size: int, dtype, device):
        import torch

        self.capacity = capacity
        self.x = torch.zeros(1, capacity, hidden_size, dtype=dtype, device=device, requires_grad=True)
        # one buffer for the forward's output and the backward's gradients: each is copied out
        # right after its replay, and the backward graph writes the input's gradient only after
        # autograd has finished reading the output's
        self.out = self.grad_out = self.grad_in = torch.zeros(1, capacity, hidden_size, dtype=dtype, device=device)
        self.cu = torch.full((MAX_DOCUMENTS + 2,), capacity, dtype=torch.int32, device=device)
        self.rope: dict[str, tuple] = {}  # layer type -> (cos, sin) buffers
        self._grads: dict[tuple, list] = {}  # LoRA weights' shapes -> gradient buffers
        self._loaded: dict[str, tuple] = {}  # what each buffer last received: (tensors, their ids and versions)
        self.pool = torch.cuda.graph_pool_handle()
        self.stream = torch.cuda.Stream(device)
        _ARENAS.add(self)

    def fits(self, hidden, cu) -> bool:
        tokens = hidden.numel() // hidden.shape[-1]
        return (hidden.dtype == self.x.dtype and hidden.shape[-1] == self.x.shape[-1] and tokens <= self.capacity
                and cu.numel() <= MAX_DOCUMENTS + 1)

    def rope_buffers(self, kind: str, cos, sin) -> tuple:
        import torch

        if kind not in self.rope:
            shape = (1, self.capacity, cos.shape[-1])
            self.rope[kind] = (torch.zeros(shape, dtype=cos.dtype, device=cos.device),
                               torch.zeros(shape, dtype=sin.dtype, device=sin.device))
        return self.rope[kind]

    def grad_buffers(self, params) -> list:
        import torch

        key = tuple((tuple(p.shape), p.dtype) for p in params)
        if key not in self._grads:
            self._grads[key] = [torch.zeros_like(p, memory_format=torch.contiguous_format) for p in params]
        return self._grads[key]

    def load(self, hidden, cos, sin, cu, kind: str) -> int:
        """Copy one layer call's inputs into the static buffers; returns its token count. The rotary
        tables and boundaries, the same for every layer of a forward, are copied once."""
        import torch

        tokens = hidden.numel() // hidden.shape[-1]
        with torch.no_grad():
            self.x[:, :tokens].copy_(hidden.reshape(1, tokens, -1))
            self.x[:, tokens:].zero_()
            if self._loaded.get("cu", (None,))[1:] != (id(cu), cu._version):
                self.cu.fill_(self.capacity)
                self.cu[: cu.numel()].copy_(cu)
                self._loaded["cu"] = (cu, id(cu), cu._version)  # the tensor held: its id is not reused
            if self._loaded.get(kind, (None,))[1:] != (id(cos), cos._version, id(sin), sin._version):
                cos_buffer, sin_buffer = self.rope_buffers(kind, cos, sin)
                cos_buffer[:, :tokens].copy_(cos.reshape(1, tokens, -1))
                sin_buffer[:, :tokens].copy_(sin.reshape(1, tokens, -1))
                cos_buffer[:, tokens:].zero_()
                sin_buffer[:, tokens:].zero_()
                self._loaded[kind] = ((cos, sin), id(cos), cos._version, id(sin), sin._version)
        return tokens

    def pool_bytes(self) -> int:
        """GPU memory the graphs' private pool holds: replays use it without the allocator counting it."""
        import torch

        pool = tuple(self.pool)
        return sum(segment["total_size"] for segment in torch.cuda.memory_snapshot()
                   if tuple(segment.get("segment_pool_id", ())) == pool)


class LayerGraphs:
    """One decoder layer's forward and backward graphs over the arena's buffers."""

    def __init__(self, layer, make_arena, layer_forward, eager_forward):
        self.layer, self.arena = layer, None  # the arena: made at the first training call, from its hidden states
        self.make_arena = make_arena
        self.layer_forward = layer_forward  # the layer's own forward, without transformers' checkpoint
        self.eager_forward = eager_forward  # what ran before: for calls a graph cannot take
        self.kind = layer.config.layer_types[layer.layer_idx]
        self.params = [p for p in layer.parameters() if p.requires_grad]
        self.forward_graph = self.backward_graph = None
        self.grads: list = []

    def _run(self):
        from tr_gemma.training.varlen_attention import BOUNDARIES

        a = self.arena
        return self.layer_forward(self.layer, a.x, position_embeddings=a.rope[self.kind], attention_mask=None,
                                  position_ids=None, past_key_values=None, **{BOUNDARIES: (a.cu, a.capacity)})

    def _backward_body(self) -> None:
        import torch

        a = self.arena
        with torch.enable_grad():
            found = torch.autograd.grad(self._run(), (a.x, *self.params), a.grad_out)
        a.grad_in.copy_(found[0])
        for buffer, grad in zip(self.grads, found[1:]):
            buffer.copy_(grad)

    def capture(self) -> None:
        """Warm up, then capture both graphs (at the layer's first training call), leaving the RNG as it was."""
        import torch

        a = self.arena
        self.grads = a.grad_buffers(self.params)
        rng = torch.cuda.get_rng_state()
        amp_on, amp_dtype = torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")

        def autocast():  # the trainer's autocast, without its weight cache (a cached cast must not outlive a graph)
            return torch.autocast("cuda", dtype=amp_dtype, enabled=amp_on, cache_enabled=False)

        # the trainer's offloading hooks copy to host memory: never inside a graph
        with outside_offloading():
            a.stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(a.stream), autocast():
                for _ in range(WARMUPS):
                    with torch.no_grad():
                        a.out.copy_(self._run())
                    self._backward_body()
            torch.cuda.current_stream().wait_stream(a.stream)
            forward_graph, backward_graph = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
            with torch.cuda.graph(forward_graph, pool=a.pool, stream=a.stream), torch.no_grad(), autocast():
                a.out.copy_(self._run())
            with torch.cuda.graph(backward_graph, pool=a.pool, stream=a.stream), autocast():
                self._backward_body()
        torch.cuda.set_rng_state(rng)
        self.forward_graph, self.backward_graph = forward_graph, backward_graph
        _note_capture_peak()


def _function():
    import torch

    class GraphedCheckpoint(torch.autograd.Function):
        """A decoder layer, checkpointed: forward replays the forward graph and keeps only the input;
        backward replays the backward graph under the forward's RNG state."""

        @staticmethod
        def forward(ctx, graphs, hidden, cos, sin, cu, *params):
            a = graphs.arena
            tokens = a.load(hidden, cos, sin, cu, graphs.kind)
            ctx.rng = torch.cuda.get_rng_state()
            graphs.forward_graph.replay()
            ctx.graphs, ctx.context = graphs, (cos, sin, cu)
            ctx.save_for_backward(hidden)
            return a.out[:, :tokens].reshape(hidden.shape).clone()

        @staticmethod
        def backward(ctx, grad):
            (hidden,) = ctx.saved_tensors
            graphs = ctx.graphs
            a = graphs.arena
            tokens = a.load(hidden, *ctx.context, graphs.kind)
            a.grad_out[:, :tokens].copy_(grad.reshape(1, tokens, -1))
            a.grad_out[:, tokens:].zero_()
            now = torch.cuda.get_rng_state()
            torch.cuda.set_rng_state(ctx.rng)
            graphs.backward_graph.replay()
            torch.cuda.set_rng_state(now)
            grad_hidden = a.grad_in[:, :tokens].reshape(hidden.shape).clone()
            return (None, grad_hidden, None, None, None, *(g.clone() for g in graphs.grads))

    return GraphedCheckpoint


_GRAPHED_CHECKPOINT = None


def _graphed_forward(self, hidden_states, *args, **kwargs):
    """A training call with packed boundaries replays the layer's graphs (captured at the first one);
    any other call (evaluation, generation, no checkpointing, too many documents) runs as before."""
    import torch

    from tr_gemma.training.varlen_attention import BOUNDARIES

    global _GRAPHED_CHECKPOINT
    graphs: LayerGraphs = self._layer_graphs
    boundaries, rope = kwargs.get(BOUNDARIES), kwargs.get("position_embeddings")
    if (args or not (self.training and self.gradient_checkpointing and torch.is_grad_enabled())
            or boundaries is None or rope is None or kwargs.get("past_key_values") is not None
            or not hidden_states.is_cuda):
        return graphs.eager_forward(hidden_states, *args, **kwargs)
    if graphs.arena is None:
        graphs.arena = graphs.make_arena(hidden_states)
    if not graphs.arena.fits(hidden_states, boundaries[0]):
        return graphs.eager_forward(hidden_states, *args, **kwargs)
    cos, sin = rope
    if graphs.forward_graph is None:
        graphs.arena.load(hidden_states, cos, sin, boundaries[0], graphs.kind)
        graphs.capture()
    if _GRAPHED_CHECKPOINT is None:
        _GRAPHED_CHECKPOINT = _function()
    return _GRAPHED_CHECKPOINT.apply(graphs, hidden_states, cos, sin, boundaries[0], *graphs.params)


def graph_decoder_layers(model, capacity: int) -> int:
    """Route every Gemma3DecoderLayer of `model` through CUDA graphs for training calls of up to
    `capacity` tokens (per-device batch x max_length); returns how many layers. Captured lazily at
    the first training step; needs the packed varlen attention (`varlen_attention.attach`)."""
    from transformers.models.gemma3.modeling_gemma3 import Gemma3DecoderLayer

    from tr_gemma.training.compiled_layers import _compiled_forward
    from tr_gemma.training.fused_elementwise import compiled_kernel

    layers = [m for m in model.modules() if isinstance(m, Gemma3DecoderLayer)]
    arenas: dict = {}

    def make_arena(hidden):
        key = (hidden.shape[-1], hidden.dtype, hidden.device)
        if key not in arenas:
            arenas[key] = GraphArena(capacity, hidden.shape[-1], hidden.dtype, hidden.device)
        return arenas[key]

    for layer in layers:
        own_forward = type(layer).forward
        own_forward = getattr(own_forward, "__wrapped__", own_forward)  # transformers' checkpoint wrapper off
        if getattr(layer.forward, "__func__", None) is _compiled_forward:  # compiled_layers: its kernels in the graph
            own_forward = compiled_kernel(own_forward)
        layer._layer_graphs = LayerGraphs(layer, make_arena, own_forward, layer.forward)
        layer.forward = types.MethodType(_graphed_forward, layer)
    return len(layers)


def graph_pool_bytes() -> int:
    """What live decoder-layer CUDA graphs hold in their private pools (0 without graphs)."""
    return sum(arena.pool_bytes() for arena in list(_ARENAS))


_capture_peak = 0  # the allocator's peak up to the last capture (pool blocks counted while captured)


def _note_capture_peak() -> None:
    """After a capture the pool's blocks read as free, yet every replay uses them: keep the peak up to
    here, and measure from here on as allocated + pool (`peak_allocated_bytes`)."""
    import torch

    global _capture_peak
    _capture_peak = max(_capture_peak, torch.cuda.max_memory_allocated())
    torch.cuda.reset_peak_memory_stats()


def capture_peak_bytes() -> int:
    return _capture_peak


def peak_allocated_bytes() -> int:
    """Peak GPU memory in use, CUDA graphs' pools included: the allocator's peak since the last capture
    plus what the pools hold (replays use it uncounted), or the peak up to the captures if higher."""
    import torch

    return max(_capture_peak, torch.cuda.max_memory_allocated() + graph_pool_bytes())


def forget_capture_peak() -> None:
    """For whoever resets the allocator's peak (a benchmark between stacks)."""
    global _capture_peak
    _capture_peak = 0
