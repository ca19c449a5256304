"""``python -m reduce.cli``."""

from .main import main

main()
