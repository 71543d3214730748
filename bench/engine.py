"""Engine benchmark: prefill time, decode ms per step by batch, tokens/s, the weights floor, TTFA.

    icot bench engine                                        # CPU, the demo-sized Llama
    icot bench engine --shape 7b --device cuda --dtype bf16  # AnyGPT size (Llama-2-7B, 53k vocab)
    icot bench engine --model checkpoints/demo-cot/llm       # a real model directory

Random weights are built directly on the device (nothing is downloaded, 7B never touches the
CPU). The weights floor is the time to read every weight byte once at the measured device copy
bandwidth: no decode step can beat it at batch 1. The TTFA rows time the engine from submit to
the last token before the first audio chunk can be decoded (codec excluded), for the A-T-T-A
and A-T-A chains with typical token counts. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

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
BANDWIDTH_BUFFER_BYTES = {"cpu": 256 * 2**20, "cuda": 2 * 2**30}


@dataclass(frozen=True)
class ChainCounts:
    """Tokens before the first audio chunk can be decoded, for one chain."""

    name: str
    generated: int  # tokens the engine must produce (the first comes from the prefill)


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
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    ttfa = parser.add_argument_group("TTFA token counts (typical 5 s question)")
    ttfa.add_argument("--question-units", type=int, default=250, help="speech units, 50 per s")
    ttfa.add_argument("--template-tokens", type=int, default=40, help="system prompt and turn tags")
    ttfa.add_argument("--transcript-tokens", type=int, default=12, help="A-T-T-A only")
    ttfa.add_argument("--glue-tokens", type=int, default=3,
                      help="A-T-T-A only: the turn tag between transcript and reply")
    ttfa.add_argument("--reply-tokens", type=int, default=10, help="reply text tokens")
    ttfa.add_argument("--chunk-units", type=int, default=10,
                      help="speech units in the first audio chunk (after <sosp>)")


def run(args: argparse.Namespace) -> int:
    import torch

    from model.engine import Engine, EngineConfig, Request
    from model.sampling import SamplingParams

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, DTYPES[args.dtype or ("bf16" if device.type == "cuda" else "float32")])
    batches = [int(b) for b in args.batches.split(",")]
    if args.model is None and args.shape == "7b" and device.type != "cuda":
        raise SystemExit("the 7b shape needs --device cuda (27 GB of float32 weights on a CPU)")

    model = build_model(args, device, dtype)
    config = EngineConfig(
        max_slots=max(batches),
        max_seq_len=args.max_seq_len,
        prefill_chunk_tokens=args.prefill_chunk,
        cuda_graphs=not args.no_cuda_graphs,
    )
    engine = Engine(model, config)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    # The paper's inference sampling: a realistic cost for the sort, the noise and the penalty.
    sampling = SamplingParams(temperature=0.7, top_p=0.8, repetition_penalty=1.05)

    bandwidth = copy_bandwidth(torch, device, sync, args.repeats)
    weight_bytes = engine.forward.weight_bytes()
    floor_ms = 1000 * weight_bytes / bandwidth
    prompt_tokens = args.question_units + args.template_tokens
    prefill_ms = time_prefill(torch, engine, prompt_tokens, sync, args.repeats)
    decode = {b: time_decode(torch, engine, b, args.context, sampling, sync, args.repeats)
              for b in batches}
    chains = [
        ChainCounts("A-T-T-A", args.transcript_tokens + args.glue_tokens + args.reply_tokens
                    + 1 + args.chunk_units),
        ChainCounts("A-T-A", args.reply_tokens + 1 + args.chunk_units),
    ]
    ttfa = {c.name: time_ttfa(engine, Request, prompt_tokens, c.generated, sampling, args.repeats)
            for c in chains}

    n_params = sum(p.numel() for p in {p.data_ptr(): p for p in model.parameters()}.values())
    print(f"## Engine benchmark: {describe(args, device)}\n")
    print("| what | figure |\n|---|---|")
    print(f"| model | {args.model or args.shape}, {n_params / 1e6:,.1f} M parameters, {dtype} |")
    print(f"| device copy bandwidth (read + write) | {bandwidth / 1e9:,.1f} GB/s |")
    print(f"| weights floor ({weight_bytes / 1e9:,.3f} GB read once) | {floor_ms:.2f} ms |")
    print(f"| KV cache ({config.max_slots} slots × {config.max_seq_len}) "
          f"| {engine.forward.cache.nbytes() / 1e9:,.2f} GB |")
    print(f"| prefill, {prompt_tokens} tokens, chunks of {config.prefill_chunk_tokens} "
          f"| {prefill_ms:.1f} ms |")
    graphs = "CUDA graphs" if engine.runner.use_graphs else "eager"
    print(f"\nDecode step ({graphs}, {args.context} cached positions per slot, sampling "
          f"T={sampling.temperature} top-p={sampling.top_p} "
          f"penalty={sampling.repetition_penalty}):\n")
    print("| batch | ms per step | tokens/s | × weights floor |\n|---|---|---|---|")
    for b, ms in decode.items():
        print(f"| {b} | {ms:.2f} | {1000 * b / ms:,.0f} | {ms / floor_ms:.2f} |")
    print("\nModel-side time to first audio (submit → last token before the first audio chunk; "
          f"prompt {prompt_tokens} tokens, batch 1, codec excluded):\n")
    print("| chain | generated tokens | first token (prefill) ms | rest ms | total ms |")
    print("|---|---|---|---|---|")
    for chain in chains:
        first, total = ttfa[chain.name]
        print(f"| {chain.name} | {chain.generated} | {first:.1f} | {total - first:.1f} "
              f"| {total:.1f} |")
    ratio = ttfa["A-T-A"][1] / ttfa["A-T-T-A"][1]
    print(f"\nA-T-A / A-T-T-A time to first audio: {ratio:.2f} "
          f"(a {100 * (1 - ratio):.1f} % reduction).")
    return 0


def describe(args: argparse.Namespace, device) -> str:
    import platform

    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, PyTorch {torch.__version__}"
    return (f"CPU ({platform.machine()}, {torch.get_num_threads()} threads), "
            f"PyTorch {torch.__version__}")


def build_model(args: argparse.Namespace, device, dtype):
    """The model under test: a directory, or random weights of `--shape` made on the device."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if args.model:
        return LlamaForCausalLM.from_pretrained(args.model, dtype=dtype, device_map=str(device))
    config = LlamaConfig(**SHAPES[args.shape], max_position_embeddings=args.max_seq_len)
    with device:
        return AutoModelForCausalLM.from_config(config, dtype=dtype).eval()


def median_ms(fn: Callable[[], object], sync: Callable[[], None], repeats: int) -> float:
    """Median wall time of `fn` in ms after two warm-up calls, the device synchronised."""
    for _ in range(2):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def copy_bandwidth(torch, device, sync, repeats: int) -> float:
    """Device memory bandwidth in bytes/s: a large copy counts its bytes read plus written."""
    n = BANDWIDTH_BUFFER_BYTES["cuda" if device.type == "cuda" else "cpu"]
    src = torch.ones(n, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), sync, repeats)
    return 2 * n / (ms / 1000)


def time_prefill(torch, engine, n_tokens: int, sync, repeats: int) -> float:
    """One slot's prompt prefill in chunks of the engine's chunk size, in ms."""
    ids = torch.randint(0, engine.vocab_size, (n_tokens,), device=engine.device)
    chunk = engine.config.prefill_chunk_tokens

    def prefill() -> None:
        for start in range(0, n_tokens, chunk):
            engine.forward.prefill(0, ids[start : start + chunk], start)

    return median_ms(prefill, sync, max(3, repeats // 4))


def time_decode(torch, engine, batch: int, context: int, sampling, sync, repeats: int) -> float:
    """One engine decode step for `batch` slots at `context` cached positions: the graphed (or
    eager) forward, sampling and the host read of the tokens, in ms."""
    runner, sampler = engine.runner, engine.sampler
    rows = list(range(batch))
    runner.tokens[:batch] = torch.randint(0, engine.vocab_size, (batch,), device=engine.device)
    runner.positions[:batch] = context
    for slot in rows:
        sampler.reset(slot, [0], seed=slot)
        sampler.set_params(slot, sampling, 0)
    # The step advances every row; the bucket covers the positions the warm-up and timed
    # steps reach.
    bucket, length = runner.bucket(batch, context + repeats + 3)
    stages = sampler.stages(rows)

    def step() -> list[int]:
        with torch.inference_mode():
            return runner.step(bucket, length, stages).tolist()

    ms = median_ms(step, sync, repeats)
    runner.positions[:batch] = engine.forward.cache.scratch_position
    return ms


def time_ttfa(engine, request_type, prompt_tokens: int, generated: int, sampling, repeats: int):
    """(ms to the first token, ms to the `generated`-th token) through the engine scheduler."""
    import torch

    ids = torch.randint(0, engine.vocab_size, (prompt_tokens,)).tolist()
    firsts, totals = [], []
    for _ in range(max(3, repeats // 4) + 1):
        handle = engine.submit(request_type(ids, generated, sampling, seed=0))
        start = time.perf_counter()
        first = None
        with torch.inference_mode():
            while not handle.done:
                engine.step()
                if first is None and handle.tokens:
                    first = time.perf_counter()
        firsts.append(1000 * (first - start))
        totals.append(1000 * (time.perf_counter() - start))
    return statistics.median(firsts[1:]), statistics.median(totals[1:])  # first run: warm-up
