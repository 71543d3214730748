"""Which free slot a new prompt takes: the one whose cached tokens share the longest prefix.

A freed engine slot keeps its keys and values; a prompt that starts with the token ids a slot
still holds prefills only the rest (model/engine.py). Pure functions over token-id lists: knows
nothing of tensors, requests or threads.
"""

from __future__ import annotations


def shared_prefix_length(cached: list[int], prompt: tuple[int, ...], limit: int) -> int:
    """How many leading tokens `cached` and `prompt` share, at most `limit`."""
    count = 0
    for a, b in zip(cached, prompt[:limit], strict=False):
        if a != b:
            break
        count += 1
    return count


def pick_slot(free: list[int], cached: list[list[int]], prompt: tuple[int, ...],
              reuse: bool) -> tuple[int, int]:
    """A slot among `free` (ascending) for `prompt`, and how many of its first tokens that slot's
    cache (`cached[slot]`) holds.

    The slot with the longest shared prefix wins; without one (or with `reuse` off), the lowest
    free slot, which keeps decode batches compact. The shared part stops one token short of the
    prompt: prefilling at least its last token yields the logits that start generation.
    """
    best, best_shared = -1, -1
    for index in free:
        shared = shared_prefix_length(cached[index], prompt, len(prompt) - 1) if reuse else 0
        if shared > best_shared:
            best, best_shared = index, shared
    return best, best_shared
