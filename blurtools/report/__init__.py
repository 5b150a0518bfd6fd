"""``blurtools report``: a self-contained HTML page to look at results and training runs.

- :mod:`blurtools.report.collect`: score each method's folder with ``blurtools score``'s scorer.
- :mod:`blurtools.report.samples` / :mod:`blurtools.report.video`: thumbnails, full-size pictures, error maps.
- :mod:`blurtools.report.results_page` / :mod:`blurtools.report.training`: the HTML sections.
- :mod:`blurtools.report.page`: the document, written atomically; :mod:`blurtools.report.build` puts it together.
"""

from blurtools.report.build import results_report, training_report
from blurtools.report.collect import Results, collect
from blurtools.report.training import is_run_folder, read_run

__all__ = ["Results", "collect", "is_run_folder", "read_run", "results_report", "training_report"]
