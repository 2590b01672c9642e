"""The SAM-A study (paper Section 3.2, A.6).

The same as `imbtrain study sam_a`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/sam_a.py.
Its search space is search_spaces/sam_a.yaml.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("sam_a", argv)


if __name__ == "__main__":
    sys.exit(main())
