"""The GPU catalog: every entry complete and sourced, and NVML device names mapped to the right entry."""

from __future__ import annotations

import dataclasses

import pytest
import tomllib

from runner.contract.catalog import _HERE, Gpu, get_gpu, gpus, match_gpu

MiB = 1 << 20


def test_every_entry_has_every_field():
    raw = tomllib.loads((_HERE / "gpus.toml").read_text())
    fields = {f.name for f in dataclasses.fields(Gpu)} - {"key"}
    for key, entry in raw.items():
        assert set(entry) == fields, f"{key}: missing {fields - set(entry)}, unknown {set(entry) - fields}"


@pytest.mark.parametrize("gpu", [g for g in gpus().values() if not g.is_cpu], ids=lambda g: g.key)
def test_gpu_entries_are_sourced_and_sane(gpu: Gpu):
    assert gpu.price_usd_per_hour > 0
    assert gpu.price_source.strip() and "20" in gpu.price_source  # names the instance and the year
    assert gpu.memory_mib > 8 * 1024
    assert gpu.capability is not None and gpu.capability >= (7, 0)
    assert gpu.bandwidth_gbs > 0 and gpu.fp16_tflops > 0
    assert gpu.nvml_names and gpu.k8s_products and gpu.price_cloud
    # SkyPilot's "H100" also names PCIe offers, so it has no name that means only an H100 PCIe.
    assert gpu.skypilot or gpu.key == "h100-pcie"
    assert gpu.bf16 == (gpu.capability >= (8, 0)), "bf16 arrives with Ampere (8.0)"
    assert gpu.fp8 == (gpu.capability >= (8, 9)), "fp8 arrives with Ada and Hopper (8.9)"


def test_cpu_entry_has_a_price_note():
    cpu = get_gpu("cpu")
    assert cpu.is_cpu and cpu.capability is None and cpu.price_source


@pytest.mark.parametrize(
    ("nvml_name", "memory_mib", "expected"),
    [
        ("Tesla T4", 15360, "t4"),
        ("Tesla V100-SXM2-16GB", 16160, "v100-16gb"),
        ("Tesla V100-SXM2-32GB", 32480, "v100-32gb"),
        ("Tesla V100S-PCIE-32GB", 32480, "v100-32gb"),
        ("NVIDIA A10G", 23028, "a10g"),
        ("NVIDIA L4", 23034, "l4"),
        ("NVIDIA A100-SXM4-40GB", 40960, "a100-40gb"),
        ("NVIDIA A100-SXM4-80GB", 81920, "a100-80gb"),
        ("NVIDIA A100 80GB PCIe", 81920, "a100-80gb"),
        ("NVIDIA H100 80GB HBM3", 81559, "h100"),
        ("NVIDIA H100 PCIe", 81559, "h100-pcie"),
        ("NVIDIA H100 NVL", 95830, "h100-nvl"),
        ("NVIDIA H200", 143771, "h200"),
    ],
)
def test_nvml_names_map_to_the_catalog(nvml_name: str, memory_mib: int, expected: str):
    found = match_gpu(nvml_name, memory_mib * MiB)
    assert found is not None and found.key == expected


@pytest.mark.parametrize("nvml_name", ["NVIDIA L40S", "NVIDIA L40", "NVIDIA A10", "NVIDIA GeForce RTX 4090"])
def test_lookalike_names_do_not_match(nvml_name: str):
    """An L40S is no L4 and an A10 no A10G: a wrong match would price and plan the wrong card."""
    assert match_gpu(nvml_name, 46068 * MiB) is None


def test_pcie_and_nvl_h100s_are_not_priced_and_planned_as_the_sxm():
    """The closest name wins over the shared token "H100": the forms differ in bandwidth, memory and price."""
    sxm, pcie, nvl = get_gpu("h100"), get_gpu("h100-pcie"), get_gpu("h100-nvl")
    assert pcie.bandwidth_gbs < sxm.bandwidth_gbs < nvl.bandwidth_gbs and nvl.memory_mib > sxm.memory_mib
    assert len({sxm.price_source, pcie.price_source, nvl.price_source}) == 3


def test_torch_reported_memory_still_picks_the_right_size():
    """torch's total_memory sits a few hundred MiB below NVML's; the nearest entry must still win."""
    assert match_gpu("NVIDIA A100-SXM4-80GB", 81050 * MiB).key == "a100-80gb"  # type: ignore[union-attr]
    assert match_gpu("NVIDIA A100-SXM4-40GB", 40330 * MiB).key == "a100-40gb"  # type: ignore[union-attr]
    assert match_gpu("Tesla V100-SXM2-16GB", 15800 * MiB).key == "v100-16gb"  # type: ignore[union-attr]
