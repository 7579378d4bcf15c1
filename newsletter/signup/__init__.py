"""`newsletter serve`: readers join (double opt-in) and leave on the publication's own server.

tokens.py signs the links, store.py keeps the server's records (SQLite), outbox.py sends
its emails, pages.py and emails.py render what readers see, app.py answers HTTP.
"""
