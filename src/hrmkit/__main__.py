import sys

from hrmkit.cli import main

sys.exit(main())
