"""Entry point: `streamlit run ui/app.py` (or `oversight-ui serve`).

The store is named by the OVERSIGHT_STORE_URL environment variable (SQLite or PostgreSQL URL).
"""

import sys
from pathlib import Path

# `streamlit run` puts ui/ on the path, not the repository; make `import ui` work uninstalled.
_root = str(Path(__file__).resolve().parents[1])
if _root not in sys.path:
    sys.path.insert(0, _root)

from ui.main import main  # noqa: E402

main()
