"""Teacher-forced accuracy on dev turns: how a stage is doing, cheaply, while it trains.

The model reads each rendered sequence once; a target token counts as right when the argmax at
the position before it is that token. `text_exact` is the share of sequences whose every target
token outside the reply speech is right (what is left of the transcript, the markers and the
reply text); `speech_acc` the share of reply-speech tokens that are right. These are not
generation metrics (training/evaluation/eval.py measures those); they trace accuracy
against k in stage 2.
Knows nothing of stages or files.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from training.stages.batch import collate
from training.stages.examples import Rendered

MONITOR_BATCH = 16


@torch.no_grad()
def teacher_forced(
    model: nn.Module, rendered: Sequence[Rendered], pad_id: int, device: torch.device
) -> dict[str, float]:
    """{"text_exact", "speech_acc", "turns"} of `model` on `rendered` (see the module docstring)."""
    exact = 0
    speech_right = speech_total = 0
    for start in range(0, len(rendered), MONITOR_BATCH):
        chunk = rendered[start:start + MONITOR_BATCH]
        batch = collate([Rendered(r.ids, r.boundary, r.speech_positions) for r in chunk],
                        pad_id).to(device)
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        right = (logits[:, :-1].argmax(dim=-1) == batch.input_ids[:, 1:]).cpu()  # (B, T-1)
        for row, r in enumerate(chunk):
            speech = set(r.speech_positions)
            text = [p for p in range(r.boundary, len(r.ids)) if p not in speech]
            exact += bool(all(right[row, p - 1] for p in text))
            speech_right += sum(int(right[row, p - 1]) for p in speech)
            speech_total += len(speech)
    return {"text_exact": exact / max(len(rendered), 1),
            "speech_acc": speech_right / max(speech_total, 1), "turns": len(rendered)}
