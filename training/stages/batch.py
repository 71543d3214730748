"""Batches of rendered turns: right-padded tensors, target labels, and the loss on targets only.

`collate` pads a micro-batch of `Rendered` sequences (examples.py) on the right and labels only
each sequence's target part (`ids[boundary:]`); `target_loss` is the cross-entropy of those
tokens. Knows nothing of stages, optimizers or files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from training.stages.examples import Rendered

IGNORE_INDEX = -100  # label of positions outside the target (no loss)


@dataclass
class Batch:
    """Right-padded tensors for one micro-batch.

    input_ids, attention_mask, labels: (B, T); labels hold IGNORE_INDEX outside the targets.
    speech_mask: (B, T) bool, the positions whose logits predict the reply's speech tokens.
    teacher: the same turns as the KL teacher reads them, or None.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    speech_mask: torch.Tensor
    teacher: Batch | None = None

    def to(self, device: torch.device) -> Batch:
        return Batch(self.input_ids.to(device), self.attention_mask.to(device),
                     self.labels.to(device), self.speech_mask.to(device),
                     None if self.teacher is None else self.teacher.to(device))

    @property
    def target_tokens(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())


def collate(rendered: Sequence[Rendered], pad_id: int) -> Batch:
    """Pad sequences on the right into a Batch; labels are ids[boundary:], shifted by the model."""
    width = max(len(r.ids) for r in rendered)
    shape = (len(rendered), width)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros(shape, dtype=torch.long)  # (B, T)
    labels = torch.full(shape, IGNORE_INDEX, dtype=torch.long)  # (B, T)
    speech_mask = torch.zeros(shape, dtype=torch.bool)  # (B, T)
    for row, r in enumerate(rendered):
        n = len(r.ids)
        input_ids[row, :n] = torch.tensor(r.ids)
        attention_mask[row, :n] = 1
        labels[row, r.boundary:n] = input_ids[row, r.boundary:n]
        speech_mask[row, [p - 1 for p in r.speech_positions]] = True
    teachers = [r.teacher for r in rendered]
    teacher = None
    if any(t is not None for t in teachers):
        if not all(t is not None for t in teachers):
            raise ValueError("either every sequence of a batch has a teacher view or none")
        teacher = collate(teachers, pad_id)
    return Batch(input_ids, attention_mask, labels, speech_mask, teacher)


def target_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the target tokens; logits (B, T, V) predict labels shifted by one."""
    shifted = labels[:, 1:]  # (B, T-1)
    where = shifted != IGNORE_INDEX  # (B, T-1)
    picked = logits[:, :-1][where].float()  # (N, V): only the target positions, in float32
    return F.cross_entropy(picked, shifted[where])
