"""The distillation term of stage 2: KL(teacher ‖ student) on the reply-speech logits.

The teacher is the frozen stage-1 model reading the full A-T-T-A example; the student reads the
same example with the first k transcript tokens removed, so the same reply-speech token sits at
different positions in the two sequences. Each side therefore brings its own mask of the
positions whose logits predict a reply-speech token; the masks must select the same number of
positions per row, in the same order. Pure tensor math: no model, no data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reply_speech_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    student_mask: torch.Tensor,
    teacher_mask: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Mean over the selected positions of KL(softmax(t/τ) ‖ softmax(s/τ)), times τ².

    student_logits: (B, Ts, V); teacher_logits: (B, Tt, V), gradients never reach it.
    student_mask: (B, Ts) bool, the positions whose logits predict reply-speech tokens.
    teacher_mask: (B, Tt) bool, the teacher's positions for the same tokens (default:
        student_mask, for sequences of equal layout).
    The τ² factor keeps the gradient's scale independent of the temperature (Hinton et al.).
    Computed in float32; returns a scalar, 0 (still attached to the student) when no position
    is selected.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    teacher_mask = student_mask if teacher_mask is None else teacher_mask
    if student_logits.dim() != 3 or teacher_logits.dim() != 3:
        raise ValueError("logits must be (B, T, V)")
    if student_logits.shape[::2] != teacher_logits.shape[::2]:
        raise ValueError(f"batch and vocabulary must match: student {tuple(student_logits.shape)}"
                         f", teacher {tuple(teacher_logits.shape)}")
    for mask, side in ((student_mask, student_logits), (teacher_mask, teacher_logits)):
        if mask.shape != side.shape[:2]:
            raise ValueError("each mask must be (B, T) of its logits")
    per_row_student = student_mask.sum(dim=1)  # (B,)
    per_row_teacher = teacher_mask.sum(dim=1)  # (B,)
    if not torch.equal(per_row_student, per_row_teacher):
        raise ValueError(f"the masks select different numbers of positions per row: "
                         f"student {per_row_student.tolist()}, teacher {per_row_teacher.tolist()}")

    student = student_logits[student_mask.bool()].float() / temperature  # (N, V), row-major
    teacher = teacher_logits.detach()[teacher_mask.bool()].float() / temperature  # (N, V)
    if student.shape[0] == 0:
        return student_logits.sum() * 0.0
    kl = F.kl_div(
        F.log_softmax(student, dim=-1),
        F.log_softmax(teacher, dim=-1),
        log_target=True,
        reduction="sum",
    )
    return kl / student.shape[0] * temperature**2
