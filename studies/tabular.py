"""Table 6: tabular models under class imbalance (paper Section 4.2, Table 6).

The same as `imbtrain study tabular`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/tabular.py.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("tabular", argv)


if __name__ == "__main__":
    sys.exit(main())
