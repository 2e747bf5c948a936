"""The human study: judges, their access tokens, items, assignments and verdicts, in the store.

The Streamlit UI (`ui/`), the training-side `oversight.judges.human.HumanJudge` and the admin
tools share this one definition of what a verdict is. One job per module:

- `schema`: the tables (Study, JudgeAccount, AccessToken, Item, Assignment, HumanVerdict);
- `db`: `connect` to a store with those tables, and the retry and chunking plumbing;
- `tokens`: judges' accounts and access tokens, sign-in;
- `items`: studies, and posting items into them (idempotent, keyed by content);
- `queue`: the judge's side: the next item, a verdict, a skip, progress;
- `verdicts`: the training side: verdict counts and verdicts per item;
- `admin`: progress per study and run, judge quality, inter-annotator agreement;
- `export`: every verdict as JSONL or spreadsheet-safe CSV.

The public API of all but `admin` is re-exported here: `from oversight import study`, then
`study.post_items(...)`. The admin's tools are imported as `from oversight.study import admin`:
they bring the statistics (numpy, scipy), which a training run and a judge's page need not load.
Importing the package loads SQLModel and the store's tables, nothing heavier; the training
store (`oversight.store`) does not know this package exists.
"""

from oversight.study.db import connect
from oversight.study.export import EXPORT_FIELDS, export_rows, to_csv, to_jsonl
from oversight.study.items import NewItem, close_items, ensure_study, item_key, post_items
from oversight.study.queue import (
    CONFIDENCE_LEVELS,
    AssignmentGone,
    ItemView,
    Progress,
    Recorded,
    next_assignment,
    progress,
    skip,
    submit,
)
from oversight.study.schema import (
    DEFAULT_INSTRUCTIONS,
    DONE,
    EXPIRED,
    PENDING,
    SKIPPED,
    TABLES,
    TIME_GRACE_S,
    UNLIMITED,
    AccessToken,
    Assignment,
    HumanVerdict,
    Item,
    JudgeAccount,
    Study,
)
from oversight.study.tokens import (
    TOKEN_PREFIX,
    Identity,
    accounts,
    authenticate,
    hash_token,
    issue_token,
    revoke,
)
from oversight.study.verdicts import VerdictInfo, done_counts, verdicts_for

__all__ = [
    "CONFIDENCE_LEVELS",
    "DEFAULT_INSTRUCTIONS",
    "DONE",
    "EXPIRED",
    "EXPORT_FIELDS",
    "PENDING",
    "SKIPPED",
    "TABLES",
    "TIME_GRACE_S",
    "TOKEN_PREFIX",
    "UNLIMITED",
    "AccessToken",
    "Assignment",
    "AssignmentGone",
    "HumanVerdict",
    "Identity",
    "Item",
    "ItemView",
    "JudgeAccount",
    "NewItem",
    "Progress",
    "Recorded",
    "Study",
    "VerdictInfo",
    "accounts",
    "authenticate",
    "close_items",
    "connect",
    "done_counts",
    "ensure_study",
    "export_rows",
    "hash_token",
    "issue_token",
    "item_key",
    "next_assignment",
    "post_items",
    "progress",
    "revoke",
    "skip",
    "submit",
    "to_csv",
    "to_jsonl",
    "verdicts_for",
]
