"""`oversight-ui`: serve the judging app, and manage judges' tokens from the shell.

    oversight-ui serve --url postgresql+psycopg://postgres@127.0.0.1/oversight --port 8501
    oversight-ui token alice                    # prints a new token for judge alice
    oversight-ui token researcher --admin       # the first admin token
    oversight-ui revoke alice
    oversight-ui export verdicts.jsonl          # or .csv

The store URL comes from --url, else $OVERSIGHT_STORE_URL, else sqlite:///study.db.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sqlalchemy.engine import Engine

from oversight import study
from oversight.errors import ConfigError
from ui.main import DEFAULT_URL

APP = Path(__file__).resolve().parent / "app.py"


def _engine(url: str) -> Engine:
    try:
        return study.connect(url)
    except ConfigError as e:
        sys.exit(f"error: {e}")


def main(argv: list[str] | None = None) -> None:
    # --url is accepted before or after the subcommand
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="store URL (SQLite/PostgreSQL)")
    ap = argparse.ArgumentParser(
        prog="oversight-ui", description=__doc__.split("\n")[0], parents=[common]
    )
    sub = ap.add_subparsers(dest="cmd")
    serve = sub.add_parser("serve", parents=[common], help="run the Streamlit app (the default)")
    serve.add_argument("--port", type=int, default=8501)
    serve.add_argument("--address", default="0.0.0.0", help="interface to listen on")
    token = sub.add_parser("token", parents=[common], help="issue a new access token for a judge")
    token.add_argument("name")
    token.add_argument("--admin", action="store_true")
    revoke = sub.add_parser("revoke", parents=[common], help="revoke every token of a judge")
    revoke.add_argument("name")
    export = sub.add_parser(
        "export", parents=[common], help="write all verdicts to FILE (.jsonl or .csv)"
    )
    export.add_argument("file", type=Path)
    args = ap.parse_args(argv)
    args.url = getattr(args, "url", None) or os.environ.get("OVERSIGHT_STORE_URL", DEFAULT_URL)

    if args.cmd == "token":
        print(study.issue_token(_engine(args.url), args.name, admin=args.admin))
    elif args.cmd == "revoke":
        print(f"revoked {study.revoke(_engine(args.url), args.name)} token(s) of {args.name}")
    elif args.cmd == "export":
        rows = study.export_rows(_engine(args.url))
        text = study.to_csv(rows) if args.file.suffix == ".csv" else study.to_jsonl(rows)
        args.file.write_text(text)
        print(f"wrote {len(rows)} verdicts to {args.file}")
    else:
        _engine(args.url)  # fail here, in one line, if the store is unreachable
        os.environ["OVERSIGHT_STORE_URL"] = args.url
        from streamlit.web import cli as stcli

        port = getattr(args, "port", 8501)
        address = getattr(args, "address", "0.0.0.0")
        sys.argv = [
            "streamlit",
            "run",
            str(APP),
            f"--server.port={port}",
            f"--server.address={address}",
            "--server.headless=true",
            "--browser.gatherUsageStats=false",
        ]
        sys.exit(stcli.main())


if __name__ == "__main__":
    main()
