from instruct_data.cli import main

main()
