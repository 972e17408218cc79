"""`python -m avatar.cli …`"""
from avatar.cli import main

main()
