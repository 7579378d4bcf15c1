"""newsletter: publish an email newsletter from Markdown articles through SendGrid."""

__version__ = "0.1.0"
