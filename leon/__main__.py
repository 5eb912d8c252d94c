import sys

from leon.cli import main

sys.exit(main())
