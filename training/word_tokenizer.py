"""A small word-level tokenizer in the AnyGPT format, built offline from a word list.

Whole words from the given list (plus the words of the chain template) are single tokens; any
other word falls back to letters (WordPiece pieces `x`, `##y`), so every lowercase ASCII text
round-trips. The AnyGPT markers and `n_units` speech tokens `<🗣️i>` are added tokens. Used by
the demo bundle's training (a model from scratch) and by the tiny test bundles (tests/). Touches
no model, codec or file.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers.processors import TemplateProcessing
from transformers import PreTrainedTokenizerFast

from model.speech_tokens import MARKERS, unit_token
from model.template import TEMPLATE_TEXT

UNK = "[UNK]"
PAD = "<pad>"
BOS = "<s>"
CONTINUATION_PREFIX = "##"
FALLBACK_CHARACTERS = string.ascii_lowercase + string.digits
PUNCTUATION = ".,:;?!'-"
_WORD_RE = re.compile(r"\w+|[^\w\s]")  # words and single punctuation marks, as pre-tokenized


def build_word_tokenizer(words: Iterable[str], n_units: int) -> PreTrainedTokenizerFast:
    """A fast tokenizer over `words` (any strings; split on spaces and punctuation, lowercased)
    and the template's words, with letter/digit fallback, BOS `<s>` prepended on encode, the
    AnyGPT markers and `n_units` speech tokens.

    Ids are deterministic for a given word set: specials, then punctuation, fallback pieces and
    words in sorted order, then markers and unit tokens (ids of `<🗣️i>` are consecutive).
    """
    if n_units < 1:
        raise ValueError(f"n_units must be ≥ 1, got {n_units}")
    vocab_words = set(PUNCTUATION) | set(FALLBACK_CHARACTERS)
    vocab_words |= {CONTINUATION_PREFIX + c for c in FALLBACK_CHARACTERS}
    for text in [*words, TEMPLATE_TEXT]:
        vocab_words.update(_WORD_RE.findall(text.lower()))
    ordered = [UNK, PAD, BOS, *sorted(vocab_words - {UNK, PAD, BOS})]
    vocab = {token: i for i, token in enumerate(ordered)}

    core = Tokenizer(models.WordPiece(vocab, unk_token=UNK, continuing_subword_prefix="##",
                                      max_input_chars_per_word=100))
    core.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(behavior="isolated")]
    )
    core.decoder = decoders.WordPiece(prefix=CONTINUATION_PREFIX, cleanup=False)
    core.post_processor = TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])])
    core.add_special_tokens([AddedToken(token, normalized=False, special=True)
                             for token in MARKERS])
    core.add_tokens([AddedToken(unit_token(u), normalized=False, special=False)
                     for u in range(n_units)])
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token=UNK, pad_token=PAD,
                                   bos_token=BOS)
