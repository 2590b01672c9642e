"""The batch-size study (paper Section 3.1, Fig. 1; A.1, Fig. 5).

The same as `imbtrain study batch_size`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/batch_size.py.
Its search space is search_spaces/batch_size.yaml.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("batch_size", argv)


if __name__ == "__main__":
    sys.exit(main())
