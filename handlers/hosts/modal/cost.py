"""What one GPU container of a model costs on Modal per hour: its GPU, plus the CPU and memory it
reserves (billed at the greater of the reservation and the use), times the region multiplier.

Rates as modal.com/pricing listed them in May-June 2026 (the README cites where from); a GPU not
listed here has no estimate rather than a wrong one. Modal's region guide
(modal.com/docs/guide/region-selection): a Function with a region set costs 1.5x in a broad
region (`us`, `eu`, ...) and 1.75x in a narrow one (`us-east`, `us-west-2`, ...); with several
regions, the smallest multiplier of those given applies.
"""

from __future__ import annotations

from handlers.hosts.modal.deployment import ModalDeployment

GPU_DOLLARS_PER_HOUR = {"H100": 3.9492, "A100-80GB": 2.4984, "L40S": 1.9512, "L4": 0.7992, "T4": 0.5904}
CPU_DOLLARS_PER_CORE_SECOND = 0.0000131
MEMORY_DOLLARS_PER_GIB_SECOND = 0.00000222
BROAD_REGION, NARROW_REGION = 1.5, 1.75


def region_multiplier(regions: list[str]) -> float:
    """1 with no region set; else the smallest multiplier among the regions given."""
    if not regions:
        return 1.0
    return min(BROAD_REGION if "-" not in region else NARROW_REGION for region in regions)


def dollars_per_hour(deployment: ModalDeployment, model_id: str) -> float | None:
    """One warm container of `model_id` on its preferred GPU, per hour; None for an unlisted GPU."""
    gpu, _, count = deployment.gpus_for(model_id)[0].partition(":")
    rate = GPU_DOLLARS_PER_HOUR.get(gpu.upper().rstrip("!"))
    if rate is None:
        return None
    reserved = deployment.cpu * CPU_DOLLARS_PER_CORE_SECOND
    reserved += deployment.memory_mib_for(model_id) / 1024 * MEMORY_DOLLARS_PER_GIB_SECOND
    return (rate * int(count or 1) + reserved * 3600) * region_multiplier(deployment.regions)
