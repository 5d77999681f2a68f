"""Stanceline training package: data, model input, fine-tuning and evaluation."""

__version__ = "0.1.0"
