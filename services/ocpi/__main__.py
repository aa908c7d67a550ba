from services.cli import main

main(["run", "ocpi"])
