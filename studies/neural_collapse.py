"""The neural-collapse study (paper Section 5, Table 4).

The same as `imbtrain study neural_collapse`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/neural_collapse.py.
Its search space is search_spaces/neural_collapse.yaml.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("neural_collapse", argv)


if __name__ == "__main__":
    sys.exit(main())
