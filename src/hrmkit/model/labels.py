"""The label the losses skip, in a module of its own so that data code (and `hrm --help`) can name it
without importing torch."""

IGNORE_LABEL_ID = -100  # PyTorch cross-entropy's default ignore_index
