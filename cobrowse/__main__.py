import sys

from cobrowse.cli import main

sys.exit(main())
