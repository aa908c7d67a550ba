from services.cli import main

main(["run", "commands"])
