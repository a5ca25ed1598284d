from pounce.cli import main

main()
