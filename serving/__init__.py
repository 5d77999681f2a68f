"""Stanceline serving: the inference API, batching queue, batch CLI and web page."""
