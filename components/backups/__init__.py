"""Hemma's restic backups, restore drills and host metrics: the host scripts and their argv."""
