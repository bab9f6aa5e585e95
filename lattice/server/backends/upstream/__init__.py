"""Proxied backends: OpenAI-compatible servers and Anthropic's Messages API."""
