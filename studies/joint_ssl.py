"""The Joint-SSL study (paper Section 3.2, A.5).

The same as `imbtrain study joint_ssl`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/joint_ssl.py.
Its search space is search_spaces/joint_ssl.yaml.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("joint_ssl", argv)


if __name__ == "__main__":
    sys.exit(main())
