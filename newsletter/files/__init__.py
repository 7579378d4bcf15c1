"""The plumbing under every stage: files read and written safely, and two small readers.

- `atomic`: writes a reader sees whole or not at all (a list is never half-written);
- `locking`: the one file lock (a list's writers, one send of an issue at a time);
- `yamlfile`: the strict YAML reader with line numbers for messages;
- `yamledit`: round-trip edits of a YAML file a person wrote (comments kept);
- `textencoding`: which encoding a text file a person saved is in;
- `retry_after`: an HTTP `Retry-After` header in seconds.

Nothing here imports a pipeline stage: it imports only `newsletter.errors`.
"""
