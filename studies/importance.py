"""Which knobs matter under imbalance (beyond the paper; its thesis, Section 1 and 3).

The same as `imbtrain study importance`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/importance.py.
Its search space is search_spaces/importance.yaml.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("importance", argv)


if __name__ == "__main__":
    sys.exit(main())
