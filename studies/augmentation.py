"""The augmentation study (paper Section 3.1, Fig. 2; A.2, Fig. 6, 7).

The same as `imbtrain study augmentation`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/augmentation.py.
Its search space is search_spaces/augmentation.yaml.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("augmentation", argv)


if __name__ == "__main__":
    sys.exit(main())
