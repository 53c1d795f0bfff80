"""Domain services: submit, refresh/finalise, poll, sweep, cancel. No Lambda events here."""
