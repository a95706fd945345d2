"""A Step 3 shard asks Ray for the GPUs its reward models need by the registry's memory figures."""
import pytest

from generation.reward_models.placement import GPU_HEADROOM
from generation.reward_models.registry import REGISTRY
from generation.steps.verify import shard_gpus


@pytest.mark.parametrize("per_gpu_gb", [16.0, 24.0, 40.0, 80.0, 141.0])
def test_every_registry_model_fits_the_gpus_its_shard_holds(per_gpu_gb):
    for spec in REGISTRY:
        gpus = shard_gpus([spec], [])(per_gpu_gb)
        assert gpus * per_gpu_gb * GPU_HEADROOM >= spec.memory_gb, spec.name
        assert gpus == 1 or (gpus - 1) * per_gpu_gb * GPU_HEADROOM < spec.memory_gb, spec.name  # no more than needed


def test_judges_and_unknown_gpu_sizes():
    big = max(REGISTRY, key=lambda spec: spec.memory_gb)
    assert shard_gpus([big], [])(None) == 1  # no GPU size known (nvidia-smi absent): one GPU per shard, as before
    assert shard_gpus([big], [4])(None) == 4 and shard_gpus([], [2])(80.0) == 2 and shard_gpus([], [])(80.0) == 0
    assert shard_gpus([big], [])(80.0) > 1
