import pytest


@pytest.fixture(autouse=True)
def fresh_compile_cache():
    """Each GPU test compiles as a fresh training process would: dynamo's per-function recompile
    limit (8) counts every model and grad/autocast mode of the whole session otherwise."""
    import torch

    torch._dynamo.reset()
    yield
    torch._dynamo.reset()
