"""Self-contained HTML pages of a run (``RUN_DIR/report.html``) and of a sweep (``SWEEP_DIR/report.html``).

Modules: rundata (read a run directory, live or killed), svg (inline charts), media (thumbnails beside the
page), records (samples and rollouts rows), run_sections (run, curves, tree), run_page, sweep_page, page (the
shell: inline style and script), browser (headless Chromium through the DevTools protocol, for tests and bench).
"""

from eval_hooks.html.run_page import REPORT_HTML, write_run_page

__all__ = ["REPORT_HTML", "write_run_page"]
