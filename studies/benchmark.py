"""The benchmark (paper Section 4, Tables 1, 2, 5).

The same as `imbtrain study benchmark`, with the same options; the study (its analysis and
findings) is imbtrain/study/paper/benchmark.py.
Its search space is search_spaces/benchmark.yaml.
"""

import sys

from imbtrain.cli import study_main


def main(argv: list[str] | None = None) -> int:
    return study_main("benchmark", argv)


if __name__ == "__main__":
    sys.exit(main())
