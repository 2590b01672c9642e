"""The decision-boundary study (paper Section 5, Fig. 18; A.11).

The same as `imbtrain study decision_boundary`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/decision_boundary.py.
Its search space is search_spaces/decision_boundary.yaml.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("decision_boundary", argv)


if __name__ == "__main__":
    sys.exit(main())
