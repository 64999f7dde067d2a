from sarcolor.cli import run

run()
