from services.cli import main

main(["run", "gateway"])
