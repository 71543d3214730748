"""LoRA adapters over peft: wrap a causal LM, save the adapter alone, load it back (merged).

Stage 2 (ICoT) trains an adapter on top of the frozen stage-1 model; a bundle ships the adapter
next to a pointer to the stage-1 weights and the server merges it at load. While the adapter is
wrapped, `model.disable_adapter()` (peft) gives the stage-1 teacher's logits from the same
weights, so KL distillation needs no second copy of the model. Knows nothing of data or chains.
"""

from __future__ import annotations

from pathlib import Path

import peft
from torch import nn

from training.config import LoraSettings


def add_lora(model: nn.Module, settings: LoraSettings) -> peft.PeftModel:
    """Wrap `model` (modified in place) with a fresh LoRA adapter; only the adapter trains.

    The adapter's B matrices start at zero, so the wrapped model computes exactly what `model`
    did until the first optimizer step. Raises ValueError when no module matches
    settings.target_modules.
    """
    config = peft.LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        bias="none",
        task_type=peft.TaskType.CAUSAL_LM,
    )
    return peft.get_peft_model(model, config)


def save_adapter(model: peft.PeftModel, directory: str | Path) -> Path:
    """Write the adapter alone (adapter_config.json + adapter_model.safetensors) to `directory`."""
    directory = Path(directory)
    model.save_pretrained(directory, safe_serialization=True)
    return directory


def load_adapter(
    base_model: nn.Module, directory: str | Path, *, merge: bool = True, trainable: bool = False
) -> nn.Module:
    """Put the adapter saved in `directory` on `base_model` (modified in place).

    merge=True folds it into the weights and returns a plain model of base_model's class (what
    the server runs); merge=False returns the PeftModel, trainable=True to resume training it.
    """
    model = peft.PeftModel.from_pretrained(base_model, str(directory), is_trainable=trainable)
    return model.merge_and_unload() if merge else model
