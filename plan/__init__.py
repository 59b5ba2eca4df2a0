"""Reading the program without running it on the server: what the providers store,
what a change would do, and the offline plan."""
