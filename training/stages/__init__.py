"""Training stages: stage 1 (explicit A-T-T-A), stage 2 (ICoT) and the baselines, over one loop.

The shared loop: stream.py deals each rank its turns, examples.py renders a turn into a token
sequence, batch.py pads sequences and scores targets, loop.py runs any stage (optimizer,
warmup and decay, accumulation, DDP through accelerate), checkpoints.py and logs.py keep its
state on disk, monitor.py scores dev turns while it trains. The stages: context.py is what every
stage of a run shares, cot.py trains stage 1, icot.py stage 2 and the baselines with the removal
schedule (schedule.py), the KL term (distill.py) and LoRA adapters (lora.py).
"""
