"""Sharded corpus storage: gzipped JSON-lines shards plus a manifest, built resumably.

A corpus is a directory of `{split}-{index:05d}.jsonl.gz` files, one example (a JSON object:
int lists, strings, numbers, nested lists and objects) per line, and `manifest.json` recording,
per split, each finished shard's index range, example count and sha256, the builder's config and
its hash, and whether the build completed. `build_corpus` writes shards one at a time (temporary
file, then atomic rename, then manifest update), so a build killed at any point resumes at the
first unfinished shard. `Corpus` reads a finished corpus back. Knows nothing of what an example
means: the stage loops and the corpus builders decide the fields.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

MANIFEST_NAME = "manifest.json"
SHARDS_FORMAT = "icot-shards/1"

ExampleSource = Callable[[int, int], Iterable[Mapping[str, Any]]]
"""`source(start, stop)` yields the examples of positions start..stop-1 of a split, the same
ones every call (seed by position, not by call order), so a resumed build writes what an
uninterrupted one would. It may yield fewer than stop - start (filtered rows), never more."""


class CorpusError(ValueError):
    """A corpus directory that cannot be built or read as asked; the message says why."""


@dataclass(frozen=True)
class SplitPlan:
    """One split to build: `size` source positions, read through `source`."""

    size: int
    source: ExampleSource

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"size must be ≥ 0, got {self.size}")


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of the config as canonical JSON: what makes two builds the same corpus."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.jsonl.gz"


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _write_shard(path: Path, examples: Iterable[Mapping[str, Any]], limit: int, where: str) -> int:
    """Write examples to `path` atomically; returns how many were written."""
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    # No name and mtime=0 in the gzip header: the same examples give the same bytes and sha256.
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
        for example in examples:
            if count == limit:
                raise CorpusError(f"{where}: the source yielded more than {limit} examples")
            if not isinstance(example, Mapping):
                raise CorpusError(f"{where}: example {count} is a {type(example).__name__}, "
                                  "not a mapping")
            try:
                line = json.dumps(example, ensure_ascii=False, separators=(",", ":"))
            except (TypeError, ValueError) as error:
                raise CorpusError(f"{where}: example {count} is not JSON data: {error}") from None
            gz.write(line.encode("utf-8") + b"\n")
            count += 1
        gz.close()
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)
    return count


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fresh_manifest(config: Mapping[str, Any], shard_size: int, plans: Mapping[str, SplitPlan]):
    return {
        "format": SHARDS_FORMAT,
        "config_hash": config_hash(config),
        "config": dict(config),
        "shard_size": shard_size,
        "completed": False,
        "splits": {
            split: {"planned": plan.size, "examples": 0, "shards": []}
            for split, plan in plans.items()
        },
    }


def _check_resumable(manifest: dict[str, Any], fresh: dict[str, Any], directory: Path) -> None:
    for key in ("format", "config_hash", "shard_size"):
        if manifest.get(key) != fresh[key]:
            raise CorpusError(
                f"{directory}: an existing corpus was built with a different {key} "
                f"({manifest.get(key)!r}, now {fresh[key]!r}); delete the directory or pass "
                "overwrite=True"
            )
    planned = {split: s["planned"] for split, s in manifest["splits"].items()}
    wanted = {split: s["planned"] for split, s in fresh["splits"].items()}
    if planned != wanted:
        raise CorpusError(
            f"{directory}: an existing corpus plans splits {planned}, now {wanted}; delete the "
            "directory or pass overwrite=True"
        )


def _shard_is_done(directory: Path, record: Mapping[str, Any]) -> bool:
    path = directory / record["file"]
    return path.is_file() and _sha256(path) == record["sha256"]


def build_corpus(
    directory: str | Path,
    plans: Mapping[str, SplitPlan],
    config: Mapping[str, Any],
    *,
    shard_size: int = 1000,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Build (or finish building) a sharded corpus in `directory`; returns the manifest.

    plans: split name → how many source positions and where examples come from.
    config: JSON data describing everything that determines the examples (codec, voices,
        seeds…); a directory built from another config is an error unless `overwrite`.
    Shards already recorded in the manifest whose file still matches its sha256 are skipped;
    every other shard is (re)written. A completed corpus is returned as it is.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be ≥ 1, got {shard_size}")
    for split in plans:
        if not split or "/" in split or split.startswith("."):
            raise ValueError(f"bad split name {split!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / MANIFEST_NAME
    fresh = _fresh_manifest(config, shard_size, plans)
    if manifest_path.is_file() and not overwrite:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        _check_resumable(manifest, fresh, directory)
        if manifest["completed"]:
            return manifest
    else:
        manifest = fresh
        _write_json_atomic(manifest_path, manifest)

    total = sum(plan.size for plan in plans.values())
    bar = tqdm(total=total, unit="pos", desc=f"corpus {directory.name}", disable=not progress)
    with bar:
        for split, plan in plans.items():
            split_record = manifest["splits"][split]
            done = {record["index"]: record for record in split_record["shards"]}
            for index, start in enumerate(range(0, plan.size, shard_size)):
                stop = min(start + shard_size, plan.size)
                bar.set_postfix(split=split, shard=index)
                if index in done and _shard_is_done(directory, done[index]):
                    bar.update(stop - start)
                    continue
                name = shard_name(split, index)
                count = _write_shard(
                    directory / name, plan.source(start, stop), stop - start, f"{split} {name}"
                )
                done[index] = {
                    "index": index,
                    "file": name,
                    "start": start,
                    "stop": stop,
                    "examples": count,
                    "sha256": _sha256(directory / name),
                }
                split_record["shards"] = [done[i] for i in sorted(done)]
                split_record["examples"] = sum(r["examples"] for r in split_record["shards"])
                _write_json_atomic(manifest_path, manifest)
                bar.update(stop - start)
    manifest["completed"] = True
    _write_json_atomic(manifest_path, manifest)
    return manifest


class Corpus:
    """A finished corpus on disk: counts per split and iteration over a split's examples."""

    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        self.directory = directory
        self.manifest = manifest

    @classmethod
    def open(cls, directory: str | Path) -> Corpus:
        """Open a corpus; an unfinished or foreign directory is a CorpusError saying so."""
        directory = Path(directory)
        path = directory / MANIFEST_NAME
        if not path.is_file():
            raise CorpusError(f"{directory}: no {MANIFEST_NAME}; build the corpus first")
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("format") != SHARDS_FORMAT:
            raise CorpusError(f"{path}: format {manifest.get('format')!r}, expected "
                              f"{SHARDS_FORMAT!r}")
        if not manifest.get("completed"):
            raise CorpusError(f"{directory}: the build did not finish; run it again to resume")
        return cls(directory, manifest)

    @property
    def splits(self) -> list[str]:
        return list(self.manifest["splits"])

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest["config"]

    def count(self, split: str) -> int:
        """Examples stored for `split`."""
        return self._split(split)["examples"]

    def iter_split(self, split: str, *, rank: int = 0, world_size: int = 1) -> Iterator[dict]:
        """Yield a split's examples in build order; with world_size > 1, only every
        world_size-th example starting at `rank` (disjoint slices for data-parallel workers)."""
        if not 0 <= rank < world_size:
            raise ValueError(f"need 0 ≤ rank < world_size, got rank {rank}, world {world_size}")
        position = 0
        for record in self._split(split)["shards"]:
            with gzip.open(self.directory / record["file"], "rt", encoding="utf-8") as f:
                for line in f:
                    if position % world_size == rank:
                        yield json.loads(line)
                    position += 1

    def _split(self, split: str) -> dict[str, Any]:
        if split not in self.manifest["splits"]:
            have = ", ".join(self.splits)
            raise CorpusError(f"{self.directory}: no split {split!r}; have {have}")
        return self.manifest["splits"][split]
