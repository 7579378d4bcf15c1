"""Sending over SMTP: one MIME message per recipient, through pooled connections."""
