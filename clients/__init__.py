"""Clients of the public protocol: `icot talk` (cli.py) and the browser page (web/, served by
server/web.py). They talk to a server only over the wire (docs/protocol.md), so any
OpenAI-Realtime-compatible server works; nothing here imports server/, model/ or training/.
"""
