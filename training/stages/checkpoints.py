"""A stage's checkpoints on disk: which one is newest, and the trainable weights and optimizer.

A checkpoint is `stage_dir/checkpoints/step-NNNNNNN/`, complete once its COMPLETE marker exists
(written last); it holds the trainable parameters (all of them, or an adapter's), the optimizer
state, one file of data position and RNG state per rank, and `state.json` with the step. The
loop (loop.py) writes and resumes them. Knows nothing of what a stage trains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

CHECKPOINTS_KEPT = 2
WEIGHTS_FILE = "trainable.safetensors"
COMPLETE_MARKER = "COMPLETE"


def checkpoint_dir(stage_dir: Path, step: int) -> Path:
    return stage_dir / "checkpoints" / f"step-{step:07d}"


def latest_checkpoint(stage_dir: Path) -> Path | None:
    """The newest complete checkpoint of a stage (its COMPLETE marker written last), or None."""
    root = stage_dir / "checkpoints"
    done = sorted(p for p in root.glob("step-*") if (p / COMPLETE_MARKER).is_file()) \
        if root.is_dir() else []
    return done[-1] if done else None


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that train (all of them, or the adapter's), by name."""
    return {name: p.detach().contiguous().cpu() for name, p in model.named_parameters()
            if p.requires_grad}


def load_trainable(model: nn.Module, path: Path) -> None:
    """Put saved trainable parameters back; every saved name must be a parameter of `model`."""
    tensors = load_file(str(path))
    names = {name for name, _ in model.named_parameters()}
    foreign = sorted(set(tensors) - names)
    if foreign:
        raise ValueError(f"{path}: parameters the model does not have: {foreign[:5]}")
    model.load_state_dict(tensors, strict=False)


def inner_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    return getattr(optimizer, "optimizer", optimizer)  # accelerate wraps it


def reset_optimizer(optimizer: Any) -> None:
    """Forget every moment estimate and step count (AdamW re-initializes them lazily)."""
    inner_optimizer(optimizer).state.clear()
