"""Evaluation: bundles answer test dialogues through the runtime (eval.py), Whisper judges the
reply speech (intelligibility.py), the results page and plots (results.py), `icot eval` (cli.py).

Nothing here trains; it reads bundles, dialogues from a corpus source and a run's logs.
"""
