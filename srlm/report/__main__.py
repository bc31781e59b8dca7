"""``python -m srlm.report RUN_DIR [--out DIR]``: build a run's report; a broken or foreign run
directory is one ``srlm: error: ...`` line and exit status 2, not a traceback."""

import sys

from srlm.report.page import main

sys.exit(main())
