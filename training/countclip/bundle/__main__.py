"""`python -m countclip.bundle DIR`: verify every file of a bundle against its manifest."""

import sys

from countclip.bundle.manifest import main

sys.exit(main())
