"""Upstream model providers behind one small protocol (replay = embedded default, openai = pass-through)."""
