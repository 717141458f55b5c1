"""The resource limits of model loading, checked before the work they bound (README, "Model files").

No target of the project holds a model near these sizes (the largest board's RAM is 4 GiB,
a Raspberry Pi 4, and microcontrollers have at most a few MB of flash), so they refuse only
files that are broken or built to exhaust the machine.
"""
MAX_FILE_BYTES = 1 << 30            # the model file itself, read at most this far
MAX_TOTAL_UNCOMPRESSED = 1 << 30    # all members of an archive together, from the central directory
MAX_MEMBERS = 10_000                # entries in one archive
MAX_RATIO = 100                     # uncompressed : compressed, for members of more than RATIO_FLOOR bytes
RATIO_FLOOR = 1 << 20               # small members compress well legitimately (zeros, JSON)
MAX_PARAMETERS = 1 << 26            # tensor elements in one model file (64 Mi, 256 MiB of float32)
MAX_JSON_DEPTH = 200                # nesting of the program's JSON (deeper would exhaust the parser's stack)
MAX_NODES = 100_000                 # operations in the program's graph (the bundled model has 11)
