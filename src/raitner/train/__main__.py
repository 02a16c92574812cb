"""``python -m raitner.train`` (and ``accelerate launch -m raitner.train``)."""

from __future__ import annotations

from raitner.train.sft import main

raise SystemExit(main())
