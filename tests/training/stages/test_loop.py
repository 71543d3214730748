"""The shared training loop on a tiny Llama and a synthetic corpus: loss masks, learning,
checkpoint resume, optimizer resets (warmup only at the stage's start), and the per-rank data
stream."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from safetensors.torch import load_file

from model.speech_tokens import SpeechVocab
from model.template import Template
from training.config import ModelConfig, TrainingConfig
from training.data.shards import Corpus, SplitPlan, build_corpus
from training.stages.batch import IGNORE_INDEX, collate, target_loss
from training.stages.checkpoints import WEIGHTS_FILE, latest_checkpoint, reset_optimizer
from training.stages.cot import build_scratch_model
from training.stages.examples import Renderer, approx_tokens, turn_items
from training.stages.logs import read_log
from training.stages.loop import (
    StageSpec,
    run_stage,
    schedule_factor,
    warmup_factor,
)
from training.stages.monitor import teacher_forced
from training.stages.stream import BatchPlanner, Cursor, TurnStream
from training.word_tokenizer import build_word_tokenizer

N_UNITS = 12
SENTENCES = [("what is one plus one", "one plus one is two"),
             ("what is two plus two", "two plus two is four"),
             ("hello", "hello there"),
             ("what color is snow", "snow is white")]


def dialogue(i: int) -> dict:
    rng = random.Random(i)
    turns = []
    for t in range(1 + i % 3):
        user, reply = SENTENCES[(i + t) % len(SENTENCES)]
        turns.append({"user_units": [rng.randrange(N_UNITS) for _ in range(5)],
                      "transcript": user, "reply_text": reply,
                      "reply_units": [(len(reply) + k) % N_UNITS for k in range(4)]})
    return {"turns": turns}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    directory = tmp_path_factory.mktemp("corpus")
    plans = {"train": SplitPlan(6, lambda a, b: (dialogue(i) for i in range(a, b))),
             "dev": SplitPlan(2, lambda a, b: (dialogue(100 + i) for i in range(a, b)))}
    build_corpus(directory, plans, {"test": "loop"}, shard_size=2, progress=False)
    return Corpus.open(directory)


@pytest.fixture(scope="module")
def tokenizer():
    words = sorted({w for pair in SENTENCES for text in pair for w in text.split()})
    return build_word_tokenizer(words, N_UNITS)


@pytest.fixture(scope="module")
def renderer(tokenizer) -> Renderer:
    return Renderer(Template(SpeechVocab(tokenizer, N_UNITS)), max_tokens=512)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_model(tokenizer, seed: int = 0):
    config = ModelConfig(codec_kind="units", hidden_size=32, num_layers=2, num_heads=2,
                         intermediate_size=64, max_positions=512)
    return build_scratch_model(config, tokenizer, seed)


def training(tmp_path, **overrides) -> TrainingConfig:
    values = dict(batch_size=2, lr=3e-3, checkpoint_every=2, log_every=1,
                  output_dir=str(tmp_path), seed=0)
    values.update(overrides)
    return TrainingConfig(**values)


def stream(corpus, **kwargs) -> TurnStream:
    return TurnStream(corpus, "train", max_history=2, seed=0, **kwargs)


def atta_spec(renderer, steps: int, **kwargs) -> StageSpec:
    return StageSpec(name="stage1", steps=steps, lr=3e-3,
                     render=lambda turn, step, rng: renderer.atta(turn), **kwargs)


def train(spec, model, corpus, tokenizer, tmp_path, resume=False, **overrides):
    return run_stage(spec, model, stream(corpus), accelerator=Accelerator(cpu=True),
                     training=training(tmp_path, **overrides), stage_dir=tmp_path / spec.name,
                     pad_id=tokenizer.pad_token_id, resume=resume, progress=False)


# ---- batches and loss ------------------------------------------------------------------


def test_batches_pad_on_the_right_and_label_only_the_targets(renderer):
    items = turn_items(dialogue(1), 2) + turn_items(dialogue(2), 2)[2:]  # 0, 1, 2 earlier turns
    rendered = [renderer.atta(item) for item in items]
    assert len({len(r.ids) for r in rendered}) == 3
    batch = collate(rendered, pad_id=1)
    width = max(len(r.ids) for r in rendered)
    assert batch.input_ids.shape == (3, width)
    for row, r in enumerate(rendered):
        n = len(r.ids)
        assert batch.input_ids[row, :n].tolist() == r.ids
        assert batch.attention_mask[row].tolist() == [1] * n + [0] * (width - n)
        labels = batch.labels[row].tolist()
        assert labels[:r.boundary] == [IGNORE_INDEX] * r.boundary
        assert labels[r.boundary:n] == r.ids[r.boundary:]
        assert labels[n:] == [IGNORE_INDEX] * (width - n)
        assert batch.speech_mask[row].nonzero().flatten().tolist() == \
            [p - 1 for p in r.speech_positions]


def test_target_loss_is_the_cross_entropy_of_target_tokens_only():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 3, 4, 5],
                           [IGNORE_INDEX, 1, 2, IGNORE_INDEX, IGNORE_INDEX]])
    manual = F.cross_entropy(torch.stack([logits[0, 1], logits[0, 2], logits[0, 3],
                                          logits[1, 0], logits[1, 1]]),
                             torch.tensor([3, 4, 5, 1, 2]))
    assert torch.allclose(target_loss(logits, labels), manual)
    changed = logits.clone()
    changed[0, 0] += 100.0  # predicts a prompt token: no effect on the loss
    assert torch.allclose(target_loss(changed, labels), manual)


# ---- learning, checkpoints, resume -------------------------------------------------------


def test_a_stage_learns_its_training_turns(corpus, tokenizer, renderer, tmp_path):
    model = tiny_model(tokenizer)
    dev = [renderer.atta(t) for t in turn_items(dialogue(0), 2) + turn_items(dialogue(1), 2)]
    before = teacher_forced(model, dev, tokenizer.pad_token_id, torch.device("cpu"))
    result = train(atta_spec(renderer, 120), model, corpus, tokenizer, tmp_path,
                   checkpoint_every=1000, log_every=10)
    log = read_log(tmp_path / "stage1" / "log.jsonl")
    assert [e["step"] for e in log] == list(range(10, 121, 10))
    assert log[-1]["loss"] < 0.5 * log[0]["loss"]
    after = teacher_forced(result.model, dev, tokenizer.pad_token_id, torch.device("cpu"))
    assert before["text_exact"] == 0.0 and after["text_exact"] == 1.0
    assert after["speech_acc"] > before["speech_acc"]


def test_resuming_after_a_crash_gives_the_uninterrupted_result(corpus, tokenizer, renderer,
                                                                tmp_path):
    straight = train(atta_spec(renderer, 5), tiny_model(tokenizer), corpus, tokenizer,
                     tmp_path / "a")
    crashed = {"yet": False}

    def render_then_crash(turn, step, rng):
        if step == 3 and not crashed["yet"]:
            crashed["yet"] = True
            raise KeyboardInterrupt  # the process dies mid-step, after the step-2 checkpoint
        return renderer.atta(turn)

    spec = StageSpec(name="stage1", steps=5, lr=3e-3, render=render_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(spec, tiny_model(tokenizer), corpus, tokenizer, tmp_path / "b")
    checkpoint = latest_checkpoint(tmp_path / "b" / "stage1")
    assert checkpoint is not None and checkpoint.name == "step-0000002"
    resumed = train(spec, tiny_model(tokenizer, seed=1), corpus, tokenizer, tmp_path / "b",
                    resume=True)
    for (name, a), (_, b) in zip(straight.model.named_parameters(),
                                 resumed.model.named_parameters(), strict=True):
        assert torch.equal(a, b), name
    losses = [[e["loss"] for e in read_log(tmp_path / run / "stage1" / "log.jsonl")]
              for run in ("a", "b")]
    assert losses[0] == losses[1] and len(losses[0]) == 5


def test_checkpoints_hold_the_trainable_weights_and_keep_the_newest_two(corpus, tokenizer,
                                                                        renderer, tmp_path):
    result = train(atta_spec(renderer, 7), tiny_model(tokenizer), corpus, tokenizer, tmp_path)
    kept = sorted(p.name for p in (tmp_path / "stage1" / "checkpoints").iterdir())
    assert kept == ["step-0000004", "step-0000006"]
    saved = load_file(str(tmp_path / "stage1" / "checkpoints" / kept[-1] / WEIGHTS_FILE))
    assert set(saved) == {n for n, p in result.model.named_parameters() if p.requires_grad}


# ---- optimizer resets and warmup -----------------------------------------------------------


def test_reset_optimizer_forgets_adam_moments():
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([weight], lr=0.1)
    for _ in range(3):
        weight.sum().backward()
        optimizer.step()
    assert optimizer.state[weight]["step"] == 3
    reset_optimizer(optimizer)
    assert not optimizer.state
    weight.sum().backward()
    optimizer.step()
    assert optimizer.state[weight]["step"] == 1


def test_warmup_runs_over_the_stage_s_first_steps():
    assert [warmup_factor(n, 4) for n in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0


def test_cosine_schedule_falls_from_the_peak_to_the_floor_over_the_stage(tmp_path):
    cosine = training(tmp_path, lr_schedule="cosine", min_lr_ratio=0.2)
    factors = [schedule_factor(s, 5, cosine) for s in range(5)]
    assert factors[0] == pytest.approx(1.0) and factors[-1] == pytest.approx(0.2)
    assert factors[2] == pytest.approx(0.6)  # halfway down the half cosine
    assert all(a > b for a, b in zip(factors, factors[1:], strict=False))
    assert schedule_factor(3, 5, training(tmp_path)) == 1.0  # constant: no decay
    with pytest.raises(ValueError, match="min_lr_ratio"):
        training(tmp_path, min_lr_ratio=1.5)


def test_the_loop_decays_the_learning_rate_it_logs(corpus, tokenizer, renderer, tmp_path):
    train(atta_spec(renderer, 5), tiny_model(tokenizer), corpus, tokenizer, tmp_path,
          lr_schedule="cosine", min_lr_ratio=0.2, checkpoint_every=100)
    log = read_log(tmp_path / "stage1" / "log.jsonl")
    # 0.2 + 0.8 · ½(1 + cos(π s / 4)) for s = 0 … 4
    assert [e["lr"] / 3e-3 for e in log] == pytest.approx([1.0, 0.8828, 0.6, 0.3172, 0.2],
                                                          abs=1e-4)


def test_the_loop_resets_when_told_on_one_schedule(corpus, tokenizer, renderer, tmp_path):
    """A reset forgets Adam's moments but does not warm up again: a stage with resets (ICoT)
    and one without (the no-CoT baseline) of the same length see the same learning rates."""
    spec = atta_spec(renderer, 8, reset_due={3, 6}.__contains__, k_at=lambda s: s // 3 + 1)
    train(spec, tiny_model(tokenizer), corpus, tokenizer, tmp_path, warmup_steps=2,
          checkpoint_every=100)
    log = read_log(tmp_path / "stage1" / "log.jsonl")
    assert [e["optimizer_reset"] for e in log] == [s in (3, 6) for s in range(8)]
    assert [e["lr"] / 3e-3 for e in log] == [0.5, 1, 1, 1, 1, 1, 1, 1]
    assert [e["k"] for e in log] == [1, 1, 1, 2, 2, 2, 3, 3]


# ---- the data stream ------------------------------------------------------------------------


def epochs(s: TurnStream, count: int) -> list[list]:
    """The turns a stream hands out in its first `count` epochs, epoch by epoch."""
    by_epoch: list[list] = [[] for _ in range(count)]
    while True:
        item = next(s)
        if s.cursor.epoch == count:
            return by_epoch
        by_epoch[s.cursor.epoch].append(item)


def every_turn(corpus) -> list:
    return [t for record in corpus.iter_split("train") for t in turn_items(record, 2)]


def test_ranks_read_disjoint_turns_that_together_cover_an_epoch(corpus):
    (rank0,) = epochs(stream(corpus, rank=0, world_size=2), 1)
    (rank1,) = epochs(stream(corpus, rank=1, world_size=2), 1)
    assert len(rank0) + len(rank1) == len(every_turn(corpus)) == 12
    assert sorted(map(repr, rank0 + rank1)) == sorted(map(repr, every_turn(corpus)))


def test_a_stream_resumed_at_its_cursor_continues_identically(corpus):
    s = stream(corpus)
    for _ in range(5):
        next(s)
    ahead = [next(s) for _ in range(20)]
    resumed = stream(corpus, cursor=Cursor(0, 0, 0))
    for _ in range(5):
        next(resumed)
    restarted = stream(corpus, cursor=Cursor.from_dict(resumed.cursor.to_dict()))
    assert [next(restarted) for _ in range(20)] == ahead


def test_each_epoch_visits_every_turn_in_a_new_order(corpus):
    first, second = epochs(stream(corpus), 2)
    assert sorted(map(repr, first)) == sorted(map(repr, second)) == \
        sorted(map(repr, every_turn(corpus)))
    assert first != second


def test_planned_batches_group_turns_of_similar_length(corpus):
    planner = BatchPlanner(stream(corpus), batch_size=3, seed=0, pool_batches=4)
    batches = [planner.batch(i) for i in range(4)]
    spans = [max(map(approx_tokens, b)) - min(map(approx_tokens, b)) for b in batches]
    everything = sorted(approx_tokens(t) for b in batches for t in b)
    assert sum(spans) < everything[-1] - everything[0]  # sorted slices, not random mixes
    assert sorted(map(repr, (t for b in batches for t in b))) == \
        sorted(map(repr, every_turn(corpus)))  # one pool of 12 = the whole epoch


def test_a_restored_planner_deals_the_same_batches(corpus):
    planner = BatchPlanner(stream(corpus), batch_size=2, seed=0, pool_batches=3)
    for i in range(4):
        planner.batch(i)
    state = planner.state()
    ahead = [planner.batch(i) for i in range(4, 9)]
    restored = BatchPlanner(stream(corpus), batch_size=2, seed=0, pool_batches=3)
    restored.restore(state)
    assert [restored.batch(i) for i in range(4, 9)] == ahead
    with pytest.raises(ValueError, match="in order"):
        restored.batch(20)
