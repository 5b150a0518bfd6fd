"""``python -m blurtools`` (and so ``torchrun -m blurtools train ...``)."""

from blurtools.cli.main import main

if __name__ == "__main__":
    main()
