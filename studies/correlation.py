"""The cross-dataset study (paper Section 4.1.3, Table 3).

The same as `imbtrain study correlation`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/correlation.py.
Its search space is search_spaces/correlation.yaml.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("correlation", argv)


if __name__ == "__main__":
    sys.exit(main())
