"""Training data: the demo domain's text (domain.py), its voicing (synth.py) and the corpora built
from it or read from SODA-TTS, stored in shards (shards.py).

A corpus source (source.py: the contract; demo_source.py, soda_corpus.py; sources.py: by name) is
what the pipeline and `icot eval` see of a recipe's data. Nothing here trains or loads a model;
the stages and the evaluation read what this package makes.
"""
