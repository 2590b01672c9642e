"""The pre-training study (paper Section 3.1, Fig. 4; A.4, Fig. 10).

The same as `imbtrain study pretraining`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/pretraining.py.
Its search space is search_spaces/pretraining.yaml.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("pretraining", argv)


if __name__ == "__main__":
    sys.exit(main())
