"""Whole music libraries: the results store (:mod:`.store`), parallel runs (:mod:`.jobs`), queries and
mood playlists (:mod:`.query`), and the Ray backend (:mod:`.ray_backend`, ``pip install moodscope[ray]``)."""
