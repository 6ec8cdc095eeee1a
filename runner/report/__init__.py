"""Reports from result folders: what ran fastest, what it cost, what broke, and whether quality held.

The pipeline runs one way, like the rest of sumbench:

``loading`` (folders → runs) → ``cells`` (repeats of one cell folded together) → ``gate``, ``tables``,
``plots`` (numbers and figures) → ``document`` (a format-neutral report) → ``render_md``,
``render_html``, ``render_data`` (Markdown, HTML, CSV, JSON). ``compare`` and ``significance`` answer
the narrower question of whether run B differs from run A beyond noise.

Everything here reads ``result.json`` only; nothing imports torch, and matplotlib is optional.
"""
