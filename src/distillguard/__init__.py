"""distillguard: an OpenAI-compatible API gateway that enforces terms of use."""

__version__ = "0.1.0"
