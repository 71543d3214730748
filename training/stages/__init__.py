"""Training stages: stage 1 (explicit A-T-T-A), stage 2 (ICoT) and the baselines, over one loop.

examples.py renders corpus records into token sequences, loop.py runs any stage (batching, loss,
checkpoints, DDP through accelerate), cot.py and icot.py say what each stage trains on.
"""
