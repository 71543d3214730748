"""The OpenAI Realtime WebSocket API: wire protocol, input audio, responses, sessions."""
