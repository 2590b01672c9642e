"""The label-smoothing study (paper Section 3.2, A.7).

The same as `imbtrain study label_smoothing`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/label_smoothing.py.
Its search space is search_spaces/label_smoothing.yaml.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("label_smoothing", argv)


if __name__ == "__main__":
    sys.exit(main())
