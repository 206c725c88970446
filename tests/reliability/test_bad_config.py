"""Bad training settings are refused before any work, naming the field.

Dagster's config schema checks types and choices when the run is launched; value ranges (a
negative learning rate, r=0, a length beyond the model's context, fp16) are checked by the
recipe model at the start of the qlora_adapter step, before the trainer process starts.
"""

import dagster as dg
import pytest

from assets.qlora_adapter import qlora_adapter
from tests.reliability.conftest import failure_chain


def _materialize(resources, partition="1b", **config):
    return dg.materialize([qlora_adapter], resources=resources, partition_key=partition, raise_on_error=False,
                          run_config={"ops": {"qlora_adapter": {"config": config}}})


@pytest.mark.parametrize(
    "config,expected",
    [
        ({"learning_rate": -1e-4}, "training.learning_rate: Input should be greater than 0"),
        ({"lora_r": 0}, "lora.r: Input should be greater than 0"),
        ({"max_length": 40_000}, "training.max_length 40000 exceeds the 1b context length 32768"),
        ({"precision": "fp16"}, "training.fp16: fp16 training is refused: Gemma 3 overflows in fp16"),
        ({"per_device_train_batch_size": 0}, "training.per_device_train_batch_size: Input should be greater than 0"),
    ],
    ids=["negative_lr", "r_zero", "beyond_context", "fp16", "zero_batch"],
)
def test_bad_value_is_refused_before_training_naming_the_field(resources, trainer_launches, config, expected):
    result = _materialize(resources, **config)
    assert not result.success
    message = failure_chain(result)
    assert "qlora_adapter[1b]: invalid training recipe" in message and expected in message, message
    assert trainer_launches == []
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_wrong_type_or_choice_is_refused_when_the_run_is_launched(resources, trainer_launches):
    with pytest.raises(dg.DagsterInvalidConfigError, match="precision") as error:
        _materialize(resources, precision="fp8")
    assert "bf16" in str(error.value)  # the allowed values are listed
    with pytest.raises(dg.DagsterInvalidConfigError, match="learning_rate"):
        _materialize(resources, learning_rate="fast")
    assert trainer_launches == []


def test_unknown_model_size_is_refused_when_the_run_is_launched(resources, trainer_launches):
    from dagster._core.errors import DagsterUnknownPartitionError

    with pytest.raises(DagsterUnknownPartitionError, match="Could not find a partition with key `2b`"):
        _materialize(resources, partition="2b")
    assert trainer_launches == []
