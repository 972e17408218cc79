"""The `avatar` command line: one module per command group (`avatar.cli.app` puts them together)."""
from avatar.cli.app import main

__all__ = ["main"]
