"""``python -m helpers.serve --model BUNDLE [--host H] [--port P] [--threads N]``: serve a
bundle written by ``serve.export_bundle`` (chapter 13; the README's "Serving a model")."""

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .app import create_app
from .bundle import Limits

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m helpers.serve --model BUNDLE [--host H] [--port P] [--threads N]``."""
    import uvicorn  # imported when serving, not when the package is

    parser = argparse.ArgumentParser(prog="python -m helpers.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a folder written by serve.export_bundle")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=None,
                        help="ONNX Runtime intra-op threads (default: all cores)")
    defaults = Limits()
    parser.add_argument("--max-texts", type=int, default=defaults.max_texts)
    parser.add_argument("--max-chars", type=int, default=defaults.max_chars)
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes)
    args = parser.parse_args(argv)
    if not Path(args.model).is_dir():
        parser.error(f"--model {args.model}: no such folder (write one with serve.export_bundle)")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    app = create_app(args.model, args.threads,
                     Limits(args.max_texts, args.max_chars, args.max_body_bytes))
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
