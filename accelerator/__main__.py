"""``python -m accelerator``: the same as the ``accel`` command."""

from accelerator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
