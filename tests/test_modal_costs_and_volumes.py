"""What the deploy script tells an operator before anything is created: what each pool costs an
hour (Modal's region multiplier included), and what to do about a v1 temp-image Volume left by an
earlier deploy (modal's own refusal, raised by its own check)."""

from __future__ import annotations

import argparse

import pytest
from modal.volume import _validate_volume_version
from modal_proto import api_pb2

from handlers.hosts.modal.cost import GPU_DOLLARS_PER_HOUR, dollars_per_hour
from handlers.hosts.modal.deployment import ModalDeployment
from scripts.deploy import check_images_volume, plan

NO_DOWNLOAD = argparse.Namespace(skip_download=True)


def cost_line(deployment: ModalDeployment) -> str:
    [line] = [step for step in plan(deployment, NO_DOWNLOAD) if step.startswith("cost")]
    return line


@pytest.mark.parametrize(
    ("regions", "multiplier"),
    [([], 1.0), (["us"], 1.5), (["us-east"], 1.75), (["us-east", "eu"], 1.5)],  # several: the smallest
)
def test_each_pool_is_priced_with_modals_region_multiplier(regions: list[str], multiplier: float) -> None:
    deployment = ModalDeployment(models=["sdxl-turbo"], regions=regions)  # an L4, 4 cores, 16 GiB
    anywhere = GPU_DOLLARS_PER_HOUR["L4"] + 3600 * (4 * 0.0000131 + 16 * 0.00000222)
    assert dollars_per_hour(deployment, "sdxl-turbo") == pytest.approx(anywhere * multiplier)
    line = cost_line(deployment)
    assert f"${anywhere * multiplier:.2f}/h per container" in line
    assert (f"x{multiplier:g}" in line) == (multiplier != 1)


def test_a_gpu_without_a_listed_rate_gets_no_estimate_rather_than_a_wrong_one() -> None:
    deployment = ModalDeployment(models=["sdxl-turbo"], gpus={"sdxl-turbo": ["B200"]})
    assert dollars_per_hour(deployment, "sdxl-turbo") is None
    assert "no estimate" in cost_line(deployment)


def test_an_existing_v1_images_volume_stops_the_deploy_saying_what_to_do() -> None:
    def open_v1_as_v2() -> None:  # what modal does when the server answers with a v1 Volume
        # modal's own check, not a copy of its message:
        _validate_volume_version(
            api_pb2.VolumeFsVersion.VOLUME_FS_VERSION_V2,
            api_pb2.VolumeFsVersion.VOLUME_FS_VERSION_V1,
            "imagegen-images",
        )

    with pytest.raises(SystemExit) as stopped:
        check_images_volume("imagegen-images", open_v1_as_v2)
    said = str(stopped.value)
    assert "'imagegen-images' is a v1 Volume" in said and "modal volume delete imagegen-images" in said
    check_images_volume("imagegen-images", lambda: None)  # a v2 Volume (or none yet): on with the deploy
