import sys

from modelplane.cli.main import main

sys.exit(main())
