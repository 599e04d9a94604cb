import sys

from search.commands import main

# The guard matters: trial worker processes are spawned, and a spawned child imports the main
# module again.
if __name__ == "__main__":
    sys.exit(main())
