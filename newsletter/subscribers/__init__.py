"""Subscriber lists: `subscribers/<list>.csv`, one row per address.

- `addresses`: the address identity (`address_key`) and the syntax check;
- `store`: the list file itself (streamed rows, the lock, the atomic rewrite);
- `lists`: the everyday operations (add, remove, delete, list, stats, export);
- `importing`: CSVs from anywhere merged into a list.

The names below are what the rest of the program reads lists by (rendering, sending,
building), re-exported so those callers need not know which module holds them.
"""

from newsletter.subscribers.store import (
    COLUMNS, DEFAULT_LIST, STATUSES, Subscriber, iter_subscribers, list_path, open_list,
)

__all__ = ["COLUMNS", "DEFAULT_LIST", "STATUSES", "Subscriber", "iter_subscribers", "list_path", "open_list"]
