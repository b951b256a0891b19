"""Stage 7, the command line: settings, config, policies, the batch runner, exit codes.

`analyzer.cli:entry` is the `onnx-audit` script; `main(argv)` returns the exit code.
"""

from analyzer.cli.app import entry, main

__all__ = ["entry", "main"]
