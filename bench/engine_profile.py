"""Where a decode step's time goes: the PyTorch profiler over replayed engine steps, by kernel.

`profile_step` runs `steps` engine decode steps (graph replays on CUDA) under
`torch.profiler`, sums each device kernel's time per step and sorts them; `kernel_table` prints
the top ones beside the step's total and groups them by kind (matrix products, attention,
sampling's sort, the rest), so the matrix products can be held against the weights floor.
Knows nothing of the command line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.profiler import ProfilerActivity, profile

# Substrings of kernel names, in the order they are tried; the first match names the kind.
KERNEL_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("attention", ("fmha", "flash", "attention", "attn", "softmax")),
    ("matrix product", ("gemm", "gemv", "cutlass", "sm90_xmma", "nvjet", "cublas", "splitk")),
    ("sort / scan", ("sort", "scan", "cub::", "radix")),
    ("norm", ("rms", "norm")),
)


@dataclass(frozen=True)
class KernelTime:
    name: str
    calls_per_step: float
    us_per_step: float


def kernel_kind(name: str) -> str:
    lowered = name.lower()
    for kind, needles in KERNEL_KINDS:
        if any(needle in lowered for needle in needles):
            return kind
    return "other (elementwise, copies, indexing)"


def profile_step(step: Callable[[], object], device: torch.device, steps: int) -> list[KernelTime]:
    """Device kernels of `step`, summed per step and sorted by time, longest first."""
    for _ in range(2):
        step()
    torch.cuda.synchronize(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize(device)
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for event in prof.events():
        if event.device_type != torch.autograd.DeviceType.CUDA:
            continue
        total = totals[event.name]
        total[0] += 1
        total[1] += event.time_range.elapsed_us()
    kernels = [KernelTime(name, calls / steps, us / steps) for name, (calls, us) in totals.items()]
    return sorted(kernels, key=lambda k: k.us_per_step, reverse=True)


def kernel_table(kernels: list[KernelTime], step_ms: float, floor_ms: float, top: int) -> str:
    """Markdown: kernel kinds against the step and the weights floor, then the top kernels."""
    busy_us = sum(k.us_per_step for k in kernels)
    launches = sum(k.calls_per_step for k in kernels)
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for kernel in kernels:
        kind = by_kind[kernel_kind(kernel.name)]
        kind[0] += kernel.calls_per_step
        kind[1] += kernel.us_per_step
    lines = [
        f"Step {step_ms:.2f} ms; kernels busy {busy_us / 1000:.2f} ms in {launches:.0f} launches "
        f"(idle between kernels {step_ms - busy_us / 1000:.2f} ms); weights floor "
        f"{floor_ms:.2f} ms.\n",
        "| kind | launches per step | ms per step | share of kernel time |",
        "|---|---|---|---|",
    ]
    for kind, (calls, us) in sorted(by_kind.items(), key=lambda item: -item[1][1]):
        lines.append(f"| {kind} | {calls:.0f} | {us / 1000:.3f} | {100 * us / busy_us:.1f} % |")
    lines += ["", "| kernel | calls per step | µs per step | µs per call |", "|---|---|---|---|"]
    for kernel in kernels[:top]:
        name = kernel.name if len(kernel.name) <= 90 else kernel.name[:87] + "..."
        name = name.replace("|", "/")
        lines.append(f"| `{name}` | {kernel.calls_per_step:.0f} | {kernel.us_per_step:.1f} "
                     f"| {kernel.us_per_step / kernel.calls_per_step:.1f} |")
    return "\n".join(lines)
