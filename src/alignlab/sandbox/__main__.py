import sys

from alignlab.sandbox.cli import main

sys.exit(main(sys.argv[1:]))
