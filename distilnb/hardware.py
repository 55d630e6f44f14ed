"""The machine: the CPU a timing was measured on (its model name and the instruction sets int8 inference depends on),
and whether a GPU may be there, asked without importing torch."""

from __future__ import annotations

import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# What ONNX Runtime's int8 kernels use, slowest to fastest: AVX2 alone (8-bit products widened to 16 bits), AVX-512
# VNNI (a fused 8-bit dot product, 16 lanes) and AMX (tiles of 8-bit products). int8's speed-up follows these flags.
INSTRUCTION_SETS = {"avx2": ("avx2",), "avx512_vnni": ("avx512_vnni",), "amx": ("amx_int8",)}
# Where Linux shows a GPU driver that torch.cuda can use: NVIDIA's (CUDA) and AMD's (ROCm).
GPU_DRIVERS = (Path("/proc/driver/nvidia/gpus"), Path("/dev/kfd"))


def cpuinfo_text(path: Path = CPUINFO) -> str:
    """Return /proc/cpuinfo's text, or '' where the system has none (macOS, Windows)."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def cpu_flags(cpuinfo: str) -> set[str]:
    """Return the flags of the first processor listed in a /proc/cpuinfo text ('flags' on x86, 'Features' on ARM)."""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


def cpu_model(cpuinfo: str) -> str:
    """Return the CPU's model name from a /proc/cpuinfo text, else what platform reports."""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "model name":
            return value.strip()
    return platform.processor() or platform.machine()


def instruction_sets(cpuinfo: str | None = None) -> dict[str, bool | None]:
    """Return {avx2, avx512_vnni, amx: present?}; None for each where the flags cannot be read."""
    flags = cpu_flags(cpuinfo_text() if cpuinfo is None else cpuinfo)
    if not flags:
        return dict.fromkeys(INSTRUCTION_SETS)
    return {name: any(flag in flags for flag in names) for name, names in INSTRUCTION_SETS.items()}


def cpu_summary(cpuinfo: str | None = None) -> str:
    """Return one line: the CPU model and its int8 instruction sets ('Xeon ...; avx2 yes, avx512_vnni no, amx no')."""
    text = cpuinfo_text() if cpuinfo is None else cpuinfo
    words = {True: "yes", False: "no", None: "unknown"}
    sets = ", ".join(f"{name} {words[present]}" for name, present in instruction_sets(text).items())
    return f"{cpu_model(text)}; {sets}"


def may_have_gpu() -> bool:
    """Return False where torch cannot find a GPU (Linux without a GPU driver; macOS, whose GPU models.device does not
    use), so a command can choose the CPU without importing torch, which takes seconds; True where torch must say."""
    system = platform.system()
    if system == "Darwin":
        return False
    return system != "Linux" or any(path.exists() for path in GPU_DRIVERS)
