"""The architecture study (paper Section 3.1, Fig. 3; A.3, Fig. 8, 9).

The same as `imbtrain study architecture`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/architecture.py.
Its search space is search_spaces/architecture.yaml.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("architecture", argv)


if __name__ == "__main__":
    sys.exit(main())
