"""Host systemd units on Hemma: which run, how their files read, how they are installed."""
