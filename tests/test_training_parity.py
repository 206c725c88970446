"""CPU run of the loss/gradient parity check: the trainer's model (trl's fused LM head, its data
path) against the plain HF + PEFT baseline. The GPU run adds flex attention and Liger kernels."""

from tests.gpu.test_train_parity import check_parity


def test_trainer_loss_and_gradients_match_the_plain_baseline_on_cpu(tmp_path, gemma_tokenizer_dir):
    check_parity(tmp_path, gemma_tokenizer_dir, "cpu", {})
