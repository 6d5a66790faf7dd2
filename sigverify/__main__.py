import sys

from sigverify.cli import main

sys.exit(main())
