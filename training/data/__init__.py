"""Training data: the demo domain's text (domain.py), its voicing (synth.py) and the corpora built
from it or read from SODA-TTS, stored in shards.

Nothing here trains or loads a model; the stages and the evaluation read what this package makes.
"""
