"""The train/test ratio study (paper A.8.1, Fig. 11-15).

The same as `imbtrain study test_ratio`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/test_ratio.py.
Its search space is search_spaces/test_ratio.yaml.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("test_ratio", argv)


if __name__ == "__main__":
    sys.exit(main())
