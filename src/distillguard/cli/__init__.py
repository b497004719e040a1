"""The ``distillguard`` command line (typer): thin, calling the same services as /admin."""
