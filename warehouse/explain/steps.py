"""The Steps page: what it says when a sweep has no measured steps or no stream-mode run."""

from __future__ import annotations

NO_STEPS = "No measured steps in this sweep."
NO_STREAM = "No stream-mode run in this sweep: run a sweep with `--mode stream`."
