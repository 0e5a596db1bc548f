from instruct_data.entry import main

main()
