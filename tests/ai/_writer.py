"""Helper process for the concurrent-writer test: append analyses and feedback."""

from __future__ import annotations

import sys

from noctis_lab.ai import record_analysis, record_feedback

if __name__ == "__main__":
    url, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for i in range(n):
        aid = record_analysis(
            "concurrent",
            "1",
            status="success",
            processing_time_s=0.01,
            study_uid=f"{tag}-{i}",
            db_url=url,
        )
        record_feedback(
            "concurrent", "1", "agree", rating=4, analysis_id=aid, user=f"writer-{tag}", db_url=url
        )
