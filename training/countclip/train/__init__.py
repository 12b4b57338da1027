"""The trainer behind `countclip train` (see `countclip.train.main` for usage)."""
