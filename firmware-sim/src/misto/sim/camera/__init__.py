"""A synthetic street camera served over HTTP: frames (binary PGM) of a street with people and
vehicles crossing a counting line, and the ground truth to check counts against. Needs numpy.
``misto-sim camera`` runs it; see firmware-sim/README.md."""
