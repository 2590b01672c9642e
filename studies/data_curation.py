"""The data-curation study (paper A.8.2, Fig. 16).

The same as `imbtrain study data_curation`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/data_curation.py.
Its search space is search_spaces/data_curation.yaml.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("data_curation", argv)


if __name__ == "__main__":
    sys.exit(main())
