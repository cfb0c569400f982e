"""``python -m plugport`` runs the CLI."""

from plugport.cli import main

main()
