"""Engine benchmark: weights floor, prefill, decode ms per step by batch, first audio, overheads.

    icot bench engine --threads 1 --bundle checkpoints/demo   # CPU: demo shape; the demo bundle's
                                                              # conversation against its engine
    icot bench engine --shape 7b --device cuda --dtype bf16 --baselines \\
        --codec speechtokenizer --prefill-chunk 512 --profile 25      # AnyGPT size on a GPU
    icot bench engine --model checkpoints/demo-cot/llm        # a real model directory

Random weights are built directly on the device (nothing is downloaded, 7B never touches the
CPU). The weights floor is the time to read every weight byte once at the measured device copy
bandwidth: no decode step can beat it at batch 1. Decode steps are timed as the engine runs
them: forward, sampling with the paper's T 0.7 / top-p 0.8 / repetition penalty 1.05, the host
read of the ids. `--baselines` adds, side by side on the same device, the engine without CUDA
graphs (eager) and transformers' own static-cache step captured as a CUDA graph
(bench/hf_static.py). First audio runs a fresh prompt through the engine's scheduler to the
tokens the first audio chunk needs and, with `--codec speechtokenizer` (the released size,
random weights, on the same device), decodes that chunk as serving does. `--profile N` prints
the top N device kernels of one graphed step at the smallest and largest batch. `--bundle DIR`
measures a bundle's conversation per token against its engine alone (bench/turn_overhead.py).
Prints markdown tables; `--json PATH` also writes every figure.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

SHAPES: dict[str, dict[str, int]] = {
    # the size of the embedded demo model (anchors: 4 layers, 256 wide)
    "demo": dict(
        hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=4, vocab_size=2048,
    ),
    # a GPT-2-small-sized Llama, for CPU figures where weights dominate
    "small": dict(
        hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
        num_key_value_heads=12, vocab_size=8192,
    ),
    # AnyGPT: Llama-2-7B with speech/image/music tokens added (6.91 B parameters)
    "7b": dict(
        hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=32, vocab_size=53000,
    ),
}
DTYPES = {"float32": "float32", "bf16": "bfloat16", "float16": "float16"}
MIN_VISIBLE_KERNELS = 20  # fewer per step in a profile: the replayed graph's kernels were hidden


@dataclass(frozen=True)
class ChainCounts:
    """Tokens before the first audio chunk can be decoded, for one chain."""

    name: str
    generated: int  # tokens the engine must produce (the first comes from the prefill)
    units: int  # of them, speech units (the first chunk's frames and its lookahead)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shape", choices=sorted(SHAPES), default="demo",
                        help="random-weight Llama shape (ignored with --model)")
    parser.add_argument("--model", help="benchmark this transformers Llama directory instead")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                        help="weights and cache dtype (default: float32 on CPU, bf16 on CUDA)")
    parser.add_argument("--batches", default="1,8,32,64", help="decode batch sizes")
    parser.add_argument("--context", type=int, default=320,
                        help="cached positions per slot during the decode timing")
    parser.add_argument("--max-seq-len", type=int, default=1024)
    parser.add_argument("--prefill-chunk", type=int, default=256, help="prefill tokens per step")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats per figure")
    parser.add_argument("--no-cuda-graphs", action="store_true", help="decode eagerly on CUDA")
    parser.add_argument("--baselines", action="store_true",
                        help="also time the eager engine and transformers' graphed static cache")
    parser.add_argument("--codec", choices=("none", "speechtokenizer"), default="none",
                        help="decode the first audio chunk with this codec (random weights)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the top N kernels of a graphed decode step (CUDA)")
    parser.add_argument("--bundle", help="also time this bundle's conversation per token "
                                         "against its engine alone (CPU, espeak-ng)")
    parser.add_argument("--overhead-runs", type=int, default=7,
                        help="replies per side for --bundle")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--json", help="also write every figure to this JSON file")
    ttfa = parser.add_argument_group("first-audio token counts (typical 5 s question)")
    ttfa.add_argument("--question-units", type=int, default=250, help="speech units, 50 per s")
    ttfa.add_argument("--template-tokens", type=int, default=40, help="system prompt and turn tags")
    ttfa.add_argument("--transcript-tokens", type=int, default=12, help="A-T-T-A only")
    ttfa.add_argument("--glue-tokens", type=int, default=3,
                      help="A-T-T-A only: the turn tag between transcript and reply")
    ttfa.add_argument("--reply-tokens", type=int, default=10, help="reply text tokens")
    ttfa.add_argument("--chunk-units", type=int, default=10,
                      help="speech units before the first chunk without --codec (after <sosp>)")


def run(args: argparse.Namespace) -> int:
    import gc

    import torch

    from bench import engine_timing as timing
    from model.engine import Engine, EngineConfig
    from model.sampling import SamplingParams

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, DTYPES[args.dtype or ("bf16" if device.type == "cuda" else "float32")])
    batches = [int(b) for b in args.batches.split(",")]
    if args.model is None and args.shape == "7b" and device.type != "cuda":
        raise SystemExit("the 7b shape needs --device cuda (27 GB of float32 weights on a CPU)")

    model = build_model(args, device, dtype)

    def engine_for(graphs: bool) -> Engine:
        return Engine(model, EngineConfig(
            max_slots=max(batches), max_seq_len=args.max_seq_len,
            prefill_chunk_tokens=args.prefill_chunk, cuda_graphs=graphs))

    engine = engine_for(not args.no_cuda_graphs)
    sync = timing.synchronizer(device)
    sampling = SamplingParams(temperature=0.7, top_p=0.8, repetition_penalty=1.05)
    codec = attempt(f"codec {args.codec}", lambda: build_codec(args.codec, device), None)
    figures: dict = {"device": describe(device), "args": vars(args)}

    bandwidth = timing.copy_bandwidth(device, sync, args.repeats)
    weight_bytes = engine.forward.weight_bytes()
    floor_ms = 1000 * weight_bytes / bandwidth
    prompt_tokens = args.question_units + args.template_tokens
    prefill_ms = timing.time_prefill(engine, prompt_tokens, sync, args.repeats)
    decode = {b: timing.time_decode(engine, b, args.context, sampling, sync, args.repeats)
              for b in batches}
    units = (codec.streaming.first_chunk_frames + codec.streaming.lookahead_frames
             if codec is not None else args.chunk_units)
    chains = [
        ChainCounts("A-T-T-A", args.transcript_tokens + args.glue_tokens + args.reply_tokens
                    + 1 + units, units),
        ChainCounts("A-T-A", args.reply_tokens + 1 + units, units),
    ]
    first_audio = {c.name: timing.time_first_audio(engine, prompt_tokens, c.generated, c.units,
                                                   sampling, codec, args.repeats)
                   for c in chains}
    profiles = {}
    if args.profile and engine.runner.use_graphs:
        profiles = attempt("profile", lambda graphed_engine=engine: profile_steps(
            graphed_engine, sampling, args, floor_ms, decode), {})
    columns_read = engine.runner.bucket(1, args.context + 1)[1]
    kv_gb = engine.forward.cache.nbytes() / 1e9
    del engine
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()

    baselines: dict[str, dict[int, float]] = {}
    graphed = not args.no_cuda_graphs and device.type == "cuda"
    if args.baselines and graphed:
        eager = engine_for(False)
        baselines["engine, eager"] = {
            b: timing.time_decode(eager, b, args.context, sampling, sync, args.repeats)
            for b in batches}
        del eager
        gc.collect()
        torch.cuda.empty_cache()
    if args.baselines:
        name = "transformers static cache" + (", CUDA graph" if device.type == "cuda" else "")
        transformers_ms = attempt(name, lambda: time_transformers(
            model, batches, args, columns_read, sync, timing), None)
        if transformers_ms is not None:
            baselines[name] = transformers_ms

    n_params = sum(p.numel() for p in {p.data_ptr(): p for p in model.parameters()}.values())
    print(f"## Engine benchmark: {figures['device']}\n")
    print("| what | figure |\n|---|---|")
    print(f"| model | {args.model or args.shape}, {n_params / 1e6:,.1f} M parameters, {dtype} |")
    print(f"| device copy bandwidth (read + write) | {bandwidth / 1e9:,.1f} GB/s |")
    print(f"| weights floor ({weight_bytes / 1e9:,.3f} GB read once) | {floor_ms:.2f} ms |")
    print(f"| KV cache ({max(batches)} slots × {args.max_seq_len}) | {kv_gb:,.2f} GB |")
    print(f"| prefill, {prompt_tokens} tokens, chunks of {args.prefill_chunk} "
          f"| {prefill_ms:.1f} ms |")
    graphs = "CUDA graphs" if graphed else "eager"
    print(f"\nDecode step, ms ({args.context} cached positions per slot, {columns_read} columns "
          f"read; engine steps sample with T={sampling.temperature} top-p={sampling.top_p} "
          f"penalty={sampling.repetition_penalty} and read the ids back; transformers' step is "
          "its forward and a greedy argmax read back):\n")
    names = list(baselines)
    print("| batch | engine (" + graphs + ") | × weights floor | tokens/s | "
          + " | ".join(names) + " |")
    print("|---|---|---|---|" + "---|" * len(names))
    for b, ms in decode.items():
        others = " | ".join(f"{baselines[n][b]:.2f} ({baselines[n][b] / floor_ms:.2f} ×)"
                            for n in names)
        print(f"| {b} | {ms:.2f} | {ms / floor_ms:.2f} | {1000 * b / ms:,.0f} | {others} |")
    codec_name = "no codec" if codec is None else f"{args.codec} first chunk on {device.type}"
    print(f"\nFirst audio, batch 1 (submit → {codec_name}; fresh prompt of {prompt_tokens} "
          f"tokens, median of {max(3, args.repeats // 4)} runs):\n")
    print("| chain | generated tokens | first token (prefill) ms | last token ms "
          "| first audio ms |\n|---|---|---|---|---|")
    for chain in chains:
        audio = first_audio[chain.name]
        print(f"| {chain.name} | {chain.generated} | {audio.first_token_ms:.1f} "
              f"| {audio.last_token_ms:.1f} | {audio.first_audio_ms:.1f} |")
    ratio = first_audio["A-T-A"].first_audio_ms / first_audio["A-T-T-A"].first_audio_ms
    print(f"\nA-T-A / A-T-T-A first audio: {ratio:.2f} (a {100 * (1 - ratio):.1f} % reduction).")
    for title, table in profiles.items():
        print(f"\n{title}\n\n{table}")
    overhead = None
    if args.bundle:
        from bench.turn_overhead import measure_overhead

        overhead = measure_overhead(args.bundle, args.overhead_runs)
        print(f"\nPer token on the bundle {args.bundle} ({overhead.tokens} tokens per reply, "
              f"median of {overhead.runs} replies each, alternated):\n")
        print("| path | ms per token |\n|---|---|")
        print(f"| engine alone (steps on one thread) | {overhead.engine_ms:.3f} |")
        print(f"| conversation (engine thread, parser, streaming decode) "
              f"| {overhead.conversation_ms:.3f} ({overhead.ratio:.2f} × the engine's, "
              "median of the pairs' ratios) |")
        print("| conversation, CPU time: the engine thread "
              f"| {overhead.engine_thread_cpu_ms:.3f} |")
        print(f"| conversation, CPU time: the rest (event loop, parser, hand-offs, codec decode) "
              f"| {overhead.other_cpu_ms:.3f} "
              f"({100 * overhead.other_cpu_ms / overhead.engine_thread_cpu_ms:.0f} % of the "
              "engine thread's) |")
        rest = overhead.other_cpu_ms - overhead.codec_cpu_ms
        print(f"| of which the codec's streaming decode (measured alone) "
              f"| {overhead.codec_cpu_ms:.3f} |")
        print(f"| the rest without it (event loop, parser, hand-offs, wake-ups) | {rest:.3f} "
              f"({100 * rest / overhead.engine_thread_cpu_ms:.0f} % of the engine thread's) |")
    if args.json:
        figures.update(
            bandwidth_gbs=bandwidth / 1e9, weights_floor_ms=floor_ms, prefill_ms=prefill_ms,
            decode_ms=decode, baselines_ms=baselines, columns_read=columns_read,
            first_audio_ms={k: asdict(v) for k, v in first_audio.items()},
            profiles=profiles, overhead=asdict(overhead) if overhead else None)
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2, default=str)
    return 0


def attempt(what: str, measure, fallback):
    """Run an optional measurement; on failure say so and go on (one device run, all figures)."""
    try:
        return measure()
    except Exception as error:  # noqa: BLE001 - report any failure and keep the other figures
        print(f"\n{what}: failed ({type(error).__name__}: {error})\n")
        return fallback


def describe(device) -> str:
    import platform

    import torch
    import transformers

    versions = f"PyTorch {torch.__version__}, transformers {transformers.__version__}"
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, {versions}"
    return f"CPU ({platform.machine()}, {torch.get_num_threads()} threads), {versions}"


def build_model(args: argparse.Namespace, device, dtype):
    """The model under test: a directory, or random weights of `--shape` made on the device."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if args.model:
        return LlamaForCausalLM.from_pretrained(args.model, dtype=dtype, device_map=str(device))
    config = LlamaConfig(**SHAPES[args.shape], max_position_embeddings=args.max_seq_len)
    with device:
        return AutoModelForCausalLM.from_config(config, dtype=dtype).eval()


def build_codec(name: str, device):
    """The codec whose first chunk the first-audio rows decode, or None."""
    if name == "none":
        return None
    from model.codecs.speechtokenizer import SpeechTokenizerCodec, SpeechTokenizerConfig

    return SpeechTokenizerCodec.random(SpeechTokenizerConfig.released(), seed=0).to(device)


def time_transformers(model, batches: list[int], args, cache_len: int, sync, timing
                      ) -> dict[int, float]:
    """transformers' static-cache step per batch (a CUDA graph on CUDA), in ms; its cache holds
    the columns the engine's step reads, or room for every timed step if that is more."""
    from bench.hf_static import GRAPH_WARMUP_RUNS, StaticStep

    steps = args.repeats + timing.WARMUP_CALLS
    cache_len = max(cache_len, args.context + steps + GRAPH_WARMUP_RUNS)
    times = {}
    for batch in batches:
        step = StaticStep(model, batch, args.context, cache_len, steps, cuda_graph=True)
        times[batch] = timing.median_ms(step.step, sync, args.repeats)
        del step
    return times


def profile_steps(engine, sampling, args, floor_ms: float, decode: dict) -> dict:
    """Top kernels of a graphed decode step at the smallest and largest batch (markdown)."""
    import torch

    from bench.engine_profile import kernel_table, profile_step

    runner, sampler = engine.runner, engine.sampler
    tables = {}
    for batch in sorted({min(decode), max(decode)}):
        rows = list(range(batch))
        runner.positions[:batch] = args.context
        for slot in rows:
            sampler.reset(slot, [0], seed=slot)
            sampler.set_params(slot, sampling, 0)
        bucket, length = runner.bucket(batch, args.context + 16)
        stages = sampler.stages(rows)

        def step(bucket=bucket, length=length, stages=stages) -> list[int]:
            with torch.inference_mode():
                return runner.step(bucket, length, stages).tolist()

        def eager_step(bucket=bucket, length=length, stages=stages) -> list[int]:
            with torch.inference_mode():
                runner.forward_step(bucket, length)
                return runner.draw_step(bucket, stages).tolist()

        title = f"Profile: graphed decode step, batch {batch} (PyTorch profiler, 5 steps)"
        kernels = profile_step(step, engine.device, steps=5)  # 7 steps in all: within the bucket
        if sum(k.calls_per_step for k in kernels) < MIN_VISIBLE_KERNELS:
            title = (f"Profile: decode step, batch {batch}, run eagerly (the profiler saw no "
                     "kernels inside graph replays; the same kernels, launched one by one)")
            runner.positions[:batch] = args.context
            kernels = profile_step(eager_step, engine.device, steps=5)
        tables[title] = kernel_table(kernels, decode[batch], floor_ms, args.profile)
        runner.positions[:batch] = engine.forward.cache.scratch_position
    return tables


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.engine …`, the same as `icot bench engine …`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
