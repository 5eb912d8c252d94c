"""Session lifecycle: what keeps leon from dying slowly of what it keeps.

* :mod:`.rollover` — the general thread rolls over by day, starting from a handoff
  summary of the previous day (:mod:`.handoff`);
* :mod:`.guard` — the cache guard starts a fresh segment of a thread when one call's
  prompt-cache creation is huge or calls keep being rate-limited;
* :mod:`.retention` — which threads go (ephemeral, archived, over the cap, over the disk
  budget), written to an archive first (:mod:`.archive`) and deleted across the three
  databases with an intent record (:mod:`.deletion`), then the space is reclaimed;
* :mod:`.orphans` — spill and sandbox directories and archive temp files that belong to
  nothing live;
* :mod:`.skills` — skill files loaded into the system context, stored once by hash;
* :mod:`.stats` — growth figures (``leon stats``) and a sample per start;
* :mod:`.startup` — all of the housekeeping above, once per process, within a time budget.

Importing this package is cheap on purpose: :mod:`leon.agent.turn` imports the guard.
"""
