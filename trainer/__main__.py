"""`python -m trainer --dataset-dir PATH --model PATH_OR_NAME [flags]`: train on a directory."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from trainer.config import build_arg_parser, config_from_namespace
from trainer.errors import TrainerError


def main(argv: list[str] | None = None) -> int:
    """Parse flags, train, print the final metrics as JSON; returns the exit status."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_arg_parser()
    parser.add_argument(
        "--dataset-dir",
        dest="dataset_dir",
        type=Path,
        required=True,
        help="The dataset version directory (<datasets_dir>/<NAME>/v<N>/), or with --method "
        "dpo a preference export (instructforge export-preference).",
    )
    namespace = parser.parse_args(argv)
    from trainer.dpo import train_dpo
    from trainer.loop import train

    try:
        config = config_from_namespace(namespace)
        if config.method == "dpo":
            result = train_dpo(config, pairs_dir=namespace.dataset_dir)
        else:
            result = train(config, dataset_dir=namespace.dataset_dir)
    except TrainerError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"output_dir": str(result.output_dir), "metrics": result.metrics}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
