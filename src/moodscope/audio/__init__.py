"""Audio in: decoding and streaming (:mod:`.decode`), log-Mel features (:mod:`.features`) and their cache
(:mod:`.cache`). The rest of moodscope reads audio only through here."""
