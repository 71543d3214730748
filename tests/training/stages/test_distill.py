"""The reply-speech KL term on plain tensors."""

from __future__ import annotations

import pytest
import torch

from training.stages.distill import reply_speech_kl

V = 11


def logits(*shape, seed):
    return torch.randn(*shape, V, generator=torch.Generator().manual_seed(seed))


def manual_kl(student_rows, teacher_rows, temperature):
    """Σ_v p_t (log p_t − log p_s), averaged over rows, times τ², written out by hand."""
    total = 0.0
    for s, t in zip(student_rows, teacher_rows, strict=True):
        p_t = torch.softmax(t.double() / temperature, -1)
        log_p_s = torch.log_softmax(s.double() / temperature, -1)
        total += float((p_t * (p_t.log() - log_p_s)).sum())
    return total / len(student_rows) * temperature**2


def test_zero_when_student_equals_teacher():
    x = logits(2, 6, seed=0)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[:, 3:] = True
    assert reply_speech_kl(x, x.clone(), mask).abs().item() < 1e-6


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_matches_the_definition_on_the_masked_positions_only(temperature):
    student, teacher = logits(2, 6, seed=1), logits(2, 6, seed=2)
    mask = torch.tensor([[0, 0, 1, 1, 0, 0], [0, 1, 0, 0, 0, 1]], dtype=torch.bool)
    got = reply_speech_kl(student, teacher, mask, temperature=temperature).item()
    assert got > 0
    assert got == pytest.approx(manual_kl(student[mask], teacher[mask], temperature), rel=1e-5)
    # Positions outside the mask do not count, however different they are.
    teacher_noisy = teacher.clone()
    teacher_noisy[~mask] += 100 * torch.randn_like(teacher_noisy[~mask])
    assert reply_speech_kl(student, teacher_noisy, mask, temperature=temperature).item() == (
        pytest.approx(got, rel=1e-6)
    )


def test_shifted_teacher_positions_line_up_with_the_student():
    # The teacher's sequence has 3 more (transcript) tokens before the reply speech.
    student = logits(1, 5, seed=3)
    teacher = torch.cat([logits(1, 3, seed=4), student], dim=1)  # (1, 8, V)
    student_mask = torch.tensor([[0, 1, 1, 1, 0]], dtype=torch.bool)
    teacher_mask = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 0]], dtype=torch.bool)
    assert reply_speech_kl(student, teacher, student_mask, teacher_mask).item() < 1e-6
    wrong = torch.tensor([[0, 1, 1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    assert reply_speech_kl(student, teacher, student_mask, wrong).item() > 1e-3


def test_gradient_reaches_only_the_student():
    student = logits(2, 4, seed=5).requires_grad_()
    teacher = logits(2, 4, seed=6).requires_grad_()
    mask = torch.ones(2, 4, dtype=torch.bool)
    reply_speech_kl(student, teacher, mask, temperature=2.0).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_bfloat16_logits_are_reduced_in_float32():
    student, teacher = logits(2, 4, seed=7), logits(2, 4, seed=8)
    mask = torch.ones(2, 4, dtype=torch.bool)
    loss = reply_speech_kl(student.bfloat16(), teacher.bfloat16(), mask)
    assert loss.dtype == torch.float32
    exact = manual_kl(student.bfloat16().float()[mask], teacher.bfloat16().float()[mask], 1.0)
    assert loss.item() == pytest.approx(exact, rel=1e-5)


def test_empty_mask_gives_zero_and_keeps_the_graph():
    student = logits(1, 3, seed=9).requires_grad_()
    loss = reply_speech_kl(student, logits(1, 3, seed=10), torch.zeros(1, 3, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(student.grad, torch.zeros_like(student))


@pytest.mark.parametrize(
    ("student_shape", "teacher_shape", "teacher_mask_row", "message"),
    [
        ((1, 4), (1, 4), [1, 1, 1, 0], "different numbers"),
        ((1, 4), (2, 4), None, "batch and vocabulary"),
    ],
)
def test_mismatched_inputs_are_rejected(student_shape, teacher_shape, teacher_mask_row, message):
    student, teacher = logits(*student_shape, seed=11), logits(*teacher_shape, seed=12)
    student_mask = torch.ones(*student_shape, dtype=torch.bool)
    teacher_mask = None
    if teacher_mask_row is not None:
        teacher_mask = torch.tensor([teacher_mask_row], dtype=torch.bool)
    with pytest.raises(ValueError, match=message):
        reply_speech_kl(student, teacher, student_mask, teacher_mask)
    with pytest.raises(ValueError, match="temperature"):
        reply_speech_kl(student, student, student_mask, temperature=0.0)
