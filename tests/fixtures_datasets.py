"""Builders of small fixture trees that copy each release's layout and quirks (for adapter tests and
config smoke tests). Each ``make_*`` writes into ``tmp_path`` and returns the dataset root.

Audio is generated (seeded sine tones + noise); nothing is downloaded or committed. The ``quirks``
switches add the broken rows/files the adapters must handle; with ``quirks=False`` the tree is clean
(every labelled id has readable audio) so training code can run on it. Every builder takes ``duration_s``
and ``sr`` for its audio (DEAM and PMEmo curves start at 15 s / 15.5 s, so use ``duration_s >= 19`` when
the labels must lie inside the audio) and most take ``n_extra`` for more clean songs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050


def write_audio(path: Path, duration_s: float = 1.0, *, seed: int = 0, sr: int = SR) -> Path:
    """Write a short mono tone + noise file; the format follows the suffix (.wav, .flac, .mp3, .ogg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = max(1, int(round(duration_s * sr)))
    t = np.arange(n) / sr
    y = 0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * t) + 0.02 * rng.standard_normal(n)
    sf.write(str(path), y.astype(np.float32), sr)
    return path


def write_garbage(path: Path) -> Path:
    """An unreadable "audio" file (random bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00not audio at all\xff" * 8)
    return path


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------------------
def make_folder(
    tmp_path: Path,
    *,
    quirks: bool = True,
    n_tracks: int = 4,
    duration_s: float = 2.0,
    ext: str = ".wav",
    sr: int = SR,
) -> Path:
    """Generic layout on a 1-9 scale with a ``split`` column.

    Clean part (always): ids ``t0``..``t{n-1}``; static valence = 1 + i, arousal = 9 - i (native);
    dynamic at a 0.5 s step over the first ``duration_s`` seconds with valence = 5 + time, arousal = 5;
    tags ``happy`` = i % 2, ``sad`` = 0.25; split ``train`` except the last id (``test``).

    Quirks (``quirks=True``):
      - static.csv: ``dup`` appears twice (3,3 then 4,4); ``nan`` has an empty valence; ``over`` has
        valence 9.2 (clipped to 9) and arousal 20 (far out: unset); latin-1 bytes in a ``title`` column.
      - dynamic.csv: ``coarse`` sampled at 1 s (0, 1, 2 s: 1, 3, 5) -> interpolated on the 0.5 s grid;
        ``fine`` sampled at 0.25 s (0, .25, .5, .75: 1, 3, 5, 7) -> segment means 2 and 6; a duplicate
        (``fine``, 0.5 s) row; a row with an empty time.
      - audio: ``orphan.wav`` (audio without labels), ``broken.wav`` (garbage), ``t0.mp3`` beside
        ``t0.wav`` (second file for one id); ``nan``/``over``/``coarse``/``fine`` have no audio.
    """
    root = tmp_path / "folder_ds"
    ids = [f"t{i}" for i in range(n_tracks)]
    static = ["track_id,valence,arousal,split" + (",title" if quirks else "")]
    for i, tid in enumerate(ids):
        split = "test" if i == n_tracks - 1 else "train"
        static.append(f"{tid},{1 + i},{9 - i},{split}" + (",plain" if quirks else ""))
    dyn = ["track_id,time_s,valence,arousal"]
    n_steps = int(duration_s / 0.5)
    for tid in ids:
        for k in range(n_steps):
            dyn.append(f"{tid},{0.5 * k},{5 + 0.5 * k},5")
    tags = ["track_id,happy,sad"] + [f"{tid},{i % 2},0.25" for i, tid in enumerate(ids)]
    for i, tid in enumerate(ids):
        write_audio(root / "audio" / f"{tid}{ext}", duration_s, sr=sr, seed=i)
    yaml_text = (
        "name: myset\ndescription: fixture in the generic layout\n"
        "scale: {min: 1, max: 9}\nsplit: {column: split}\n"
    )
    static_bytes = ("\n".join(static) + "\n").encode("utf-8")
    if quirks:
        static_bytes += (
            b"dup,3,3,train,first\n"
            b"dup,4,4,train,second\n"
            b"nan,,5,train,x\n"
            b"over,9.2,20,train,Caf\xe9\n"  # latin-1 e-acute: not UTF-8
        )
        dyn += [
            "coarse,0,1,1",
            "coarse,1,3,3",
            "coarse,2,5,5",
            "fine,0,1,1",
            "fine,0.25,3,3",
            "fine,0.5,5,5",
            "fine,0.75,7,7",
            "fine,0.5,9,9",
            "fine,,5,5",
        ]
        write_audio(root / "audio" / "orphan.wav", 1.0, sr=sr, seed=9)
        write_garbage(root / "audio" / "broken.wav")
        _write(root / "audio" / "t0.mp3", b"")
        static_bytes += b"broken,5,5,train,y\n"
    _write(root / "static.csv", static_bytes)
    _write(root / "dynamic.csv", "\n".join(dyn) + "\n")
    _write(root / "tags.csv", "\n".join(tags) + "\n")
    _write(root / "dataset.yaml", yaml_text)
    return root


# ------------------------------------------------------------------------------------------------------------
def make_pmemo(
    tmp_path: Path,
    *,
    layout: str = "2019",
    quirks: bool = True,
    duration_s: float = 2.0,
    ext: str = ".mp3",
    n_extra: int = 0,
    sr: int = SR,
) -> Path:
    """PMEmo as downloaded; returns the folder holding ``PMEmo2019/`` (2019) or ``PMEmo/`` (2018).

    2019 (clean part): ids 1, 4, 5 with static (Arousal, Valence) = (0.4, 0.6), (0.8, 0.1), (0.5, 0.5)
    and dynamic rows at frameTime 15.5, 16.0, 16.5 with arousal 0.5, 0.6, 0.7 and valence 0.25 for every
    song; the dynamic file's columns are ordered musicId, frameTime, Valence(mean), Arousal(mean)
    (the order is unverified, so the adapter must not rely on it). Audio ``chorus/<id>.mp3``.
    Quirks: id 7 labelled without audio; ``chorus/13.mp3`` without labels; a repeated static row for 4;
    id 5's dynamic valence at 16.0 empty (interpolated to 0.25); id 4's arousal at 16.5 = 1.02 (clipped);
    ``chorus/5.mp3`` is unreadable garbage. ``n_extra`` adds clean songs 20, 21, ... (2019 layout) with static
    (arousal 0.1 (i % 10), valence 1 - 0.1 (i % 10)) and the same dynamic rows.

    2018: ``PMEmo/Annotations/{Arousal,Valence}/<id>-{A,V}.csv`` with a header ``subject,static,15.5,16.0,16.5``
    and one row per annotator; ``PMEmo/Chorus/<id>.mp3``. Song 1: arousal annotators (0.2 static; 0.2, 0.4,
    0.6) and (0.4; 0.4, 0.6, 0.8) -> static 0.3, dynamic 0.3, 0.5, 0.7; valence (0.5; 0.5, 0.5, 0.5) x 2.
    Quirks: song 2's valence file header has no times (``subject,static,v1,v2,v3,v4``) and one more column
    than its arousal file (curves cut to the common span); song 3 has only an arousal file, whose row has
    one cell more than its header.
    """
    if layout == "2018":
        root = tmp_path / "pmemo2018"
        ann = root / "PMEmo" / "Annotations"
        _write(
            ann / "Arousal" / "1-A.csv",
            "subject,static,15.5,16.0,16.5\ns1,0.2,0.2,0.4,0.6\ns2,0.4,0.4,0.6,0.8\n",
        )
        _write(
            ann / "Valence" / "1-V.csv",
            "subject,static,15.5,16.0,16.5\ns1,0.5,0.5,0.5,0.5\ns2,0.5,0.5,0.5,0.5\n",
        )
        write_audio(root / "PMEmo" / "Chorus" / f"1{ext}", duration_s, sr=sr, seed=1)
        if quirks:
            _write(ann / "Arousal" / "2-A.csv", "subject,static,15.5,16.0,16.5\ns1,0.6,0.6,0.6,0.6\n")
            _write(ann / "Valence" / "2-V.csv", "subject,static,v1,v2,v3,v4\ns1,0.7,0.7,0.7,0.7,0.7\n")
            _write(ann / "Arousal" / "3-A.csv", "subject,static,15.5,16.0\ns1,0.9,0.9,0.9,0.9\n")
            write_audio(root / "PMEmo" / "Chorus" / f"2{ext}", duration_s, sr=sr, seed=2)
        return root

    root = tmp_path / "pmemo2019"
    base = root / "PMEmo2019"
    static = {"1": (0.4, 0.6), "4": (0.8, 0.1), "5": (0.5, 0.5)}
    for i in range(n_extra):
        static[str(20 + i)] = (round(0.1 * (i % 10), 1), round(1 - 0.1 * (i % 10), 1))
    lines = ["musicId,Arousal(mean),Valence(mean)"] + [f"{k},{a},{v}" for k, (a, v) in static.items()]
    dyn = ["musicId,frameTime,Valence(mean),Arousal(mean)"]
    for k in static:
        for j, t in enumerate((15.5, 16.0, 16.5)):
            val = "0.25"
            aro = f"{0.5 + 0.1 * j:.1f}"
            if quirks and k == "5" and t == 16.0:
                val = ""
            if quirks and k == "4" and t == 16.5:
                aro = "1.02"
            dyn.append(f"{k},{t},{val},{aro}")
    meta = ["musicId,fileName,title,artist,album,duration,chorus_start_time,chorus_end_time"]
    for k in static:
        meta.append(f"{k},{k}.mp3,Song {k},Artist {k},Album,200.5,01:02,01:32")
    for k in static:
        if quirks and k == "5":
            write_garbage(base / "chorus" / f"{k}{ext}")
        else:
            write_audio(base / "chorus" / f"{k}{ext}", duration_s, sr=sr, seed=int(k))
    if quirks:
        lines += ["7,0.2,0.3", "4,0.1,0.1"]
        write_audio(base / "chorus" / f"13{ext}", duration_s, sr=sr, seed=13)
    _write(base / "annotations" / "static_annotations.csv", "\n".join(lines) + "\n")
    _write(
        base / "annotations" / "static_annotations_std.csv", "musicId,Arousal(std),Valence(std)\n1,0.1,0.1\n"
    )
    _write(base / "annotations" / "dynamic_annotations.csv", "\n".join(dyn) + "\n")
    _write(base / "metadata.csv", "\n".join(meta) + "\n")
    return root


# ------------------------------------------------------------------------------------------------------------
DEAM_AVG = "DEAM_Annotations/annotations/annotations averaged per song"


def make_deam(
    tmp_path: Path,
    *,
    release: str = "full",
    quirks: bool = True,
    duration_s: float = 2.0,
    ext: str = ".mp3",
    n_extra: int = 0,
    sr: int = SR,
) -> Path:
    """DEAM as downloaded; returns the folder holding ``DEAM_audio/`` and ``DEAM_Annotations/`` (full) or the
    2013 release's folder (``clips_45seconds/``, ``annotations/``).

    Full release (clean part): static 1-9 with a header whose names follow a space
    (``song_id, valence_mean, ...``): song 2 = (3.1, 3) -> (-0.475, -0.5); song 3 = (5, 7) -> (0, 0.5);
    song 2001 = (9, 1) -> (1, -1) in the ``_2000_2058`` file (which has extra ``*_max_mean`` columns).
    Dynamic header ``song_id,sample_15000ms .. sample_18000ms`` (7 columns): song 2 has 4 values then empty
    trailing cells (ragged), 2001 all 7; valence = arousal = 0.1 k for k = 0..n-1.
    Quirks: song 3's dynamic valence at 16000 ms empty (interpolated), its arousal row one value shorter than
    its valence row (cut to the common span); song 1999 in static and valence.csv only, without audio;
    duplicate static row for 2; arousal 9.3 for song 5 (clipped to 9) and valence 12 (unset);
    ``10.mp3`` without labels; ``2001.mp3`` garbage; Latin-1 bytes in metadata_2014.csv; metadata_2015.csv
    row with one cell more than its header. Clean (``quirks=False``): songs 2, 3 (5 dynamic values) and 2001,
    all with audio, plus ``n_extra`` songs (ids 100, 102, ... and 2011, 2013, ...; full release only) with
    static (1 + i % 9, 9 - i % 9) and 7 dynamic values, for runs that need more songs.

    2013 release: ``annotations/static_annotations.csv`` (``song_id,mean_arousal,std_arousal,mean_valence,
    std_valence``, arousal first): song 2 = (a 3, v 3.1), song 3 = (a 7, v 5); ``*_cont_average.csv``
    ragged like above; ``songs_info.csv`` with quoted values carrying stray tabs; 2 -> development,
    3 -> evaluation. Quirks: song 4 in songs_info only (no labels, no audio), Latin-1 artist name.
    """
    header = "song_id," + ",".join(f"sample_{ms}ms" for ms in range(15000, 18500, 500))

    def dyn_row(tid, n, total=7, hole=None):
        cells = [f"{0.1 * k:.1f}" for k in range(n)]
        if hole is not None:
            cells[hole] = ""
        return f"{tid}," + ",".join(cells + [""] * (total - n))

    if release == "2013":
        root = tmp_path / "deam2013"
        ann = root / "annotations"
        _write(
            ann / "static_annotations.csv",
            "song_id,mean_arousal,std_arousal,mean_valence,std_valence\n2,3,0.5,3.1,0.94\n3,7,0.4,5,1.0\n",
        )
        aro = [header, dyn_row(2, 4), dyn_row(3, 7)]
        _write(ann / "arousal_cont_average.csv", "\n".join(aro) + "\n")
        _write(ann / "valence_cont_average.csv", "\n".join(aro) + "\n")
        _write(ann / "arousal_cont_std.csv", header + "\n")
        info = (
            b'"song_id","file_name","Artist","Song title","start of the segment (min.sec)",'
            b'"end of the segment (min.sec)","Genre","Mediaeval 2013 set"\n'
            b'2,"\t2.mp3","\tArtist Two\t","\tSong Two\t","\t0.30","\t1.15","\tBlues\t","development"\n'
            b'3,"\t3.mp3","\tArtist Three\t","\tSong Three\t","\t1.00","\t1.45","\tRock\t","evaluation"\n'
        )
        if quirks:
            info += b'4,"\t4.mp3","\tBj\xf6rk\t","\tS\t","\t0.00","\t0.45","\tPop\t","development"\n'
        _write(ann / "songs_info.csv", info)
        for i, tid in enumerate((2, 3)):
            write_audio(root / "clips_45seconds" / f"{tid}{ext}", duration_s, sr=sr, seed=i)
        return root

    root = tmp_path / "deam_full"
    sl = root / DEAM_AVG / "song_level"
    s1 = [
        "song_id, valence_mean, valence_std, arousal_mean, arousal_std",
        "2,3.1,0.94,3,0.63",
        "3,5,1.0,7,1.2",
    ]
    s2 = ["song_id, valence_mean, valence_std, valence_max_mean, arousal_mean, arousal_std, arousal_max_mean"]
    s2.append("2001,9,0.5,9,1,0.5,1")
    dd = root / DEAM_AVG / "dynamic (per second annotations)"
    val = [header, dyn_row(2, 4), dyn_row(2001, 7)]
    aro = [header, dyn_row(2, 4), dyn_row(2001, 7)]
    audio_ids = [2, 3, 2001]
    if quirks:
        s1 += ["2,8,0.1,8,0.1", "1999,4,1,4,1", "5,12,1,9.3,1"]
        val += [dyn_row(3, 5, hole=2), dyn_row(1999, 3)]
        aro += [dyn_row(3, 4)]
        audio_ids.append(5)
    else:
        val.append(dyn_row(3, 5))
        aro.append(dyn_row(3, 5))
    for i in range(n_extra):
        tid = 100 + i if i % 2 == 0 else 2010 + i
        v, a = 1 + i % 9, 9 - i % 9
        if tid < 2000:
            s1.append(f"{tid},{v},0.5,{a},0.5")
        else:
            s2.append(f"{tid},{v},0.5,{v},{a},0.5,{a}")
        val.append(dyn_row(tid, 7))
        aro.append(dyn_row(tid, 7))
        audio_ids.append(tid)
    _write(sl / "static_annotations_averaged_songs_1_2000.csv", "\n".join(s1) + "\n")
    _write(sl / "static_annotations_averaged_songs_2000_2058.csv", "\n".join(s2) + "\n")
    _write(dd / "valence.csv", "\n".join(val) + "\n")
    _write(dd / "arousal.csv", "\n".join(aro) + "\n")
    audio = root / "DEAM_audio" / "MEMD_audio"
    for i, tid in enumerate(audio_ids):
        if quirks and tid == 2001:
            write_garbage(audio / f"{tid}{ext}")
        else:
            write_audio(audio / f"{tid}{ext}", duration_s, sr=sr, seed=i)
    md = root / "metadata"
    _write(
        md / "metadata_2013.csv",
        "song_id,file_name,Artist,Song title,Genre\n2,2.mp3,A2,T2,Blues\n3,3.mp3,A3,T3,Rock\n",
    )
    if quirks:
        _write(md / "metadata_2014.csv", b"Id,Artist,Track,Genre\n5,Bj\xf6rk,T5,Pop\n")
        _write(md / "metadata_2015.csv", "id,file_name,Artist,Genre\n2001,2001.mp3,A,B,shifted\n")
        write_audio(audio / f"10{ext}", 1.0, sr=sr, seed=10)
    return root


# ------------------------------------------------------------------------------------------------------------
CAL500_EMOTIONS = [
    "Angry_/_Agressive", "Arousing_/_Awakening", "Bizarre_/_Weird", "Calming_/_Soothing",
    "Carefree_/_Lighthearted", "Cheerful_/_Festive", "Emotional_/_Passionate", "Exciting_/_Thrilling",
    "Happy", "Laid-back_/_Mellow", "Light_/_Playful", "Loving_/_Romantic", "Pleasant_/_Comfortable",
    "Positive_/_Optimistic", "Powerful_/_Strong", "Sad", "Tender_/_Soft", "Touching_/_Loving",
]  # fmt: skip
CAL500_VOCAB = (
    ["Emotion-" + e for e in CAL500_EMOTIONS]
    + ["NOT-Emotion-" + e for e in CAL500_EMOTIONS]
    + ["Genre-Rock", "Instrument_-_Electric_Guitar_(distorted)", "Usage-At_a_party", "Vocals-Aggressive"]
)
CAL500_SONGS = ["2pac-trapped", "abba-dancing_queen", "beatles-help", "nirvana-lithium"]


def cal500_value(song_index: int, tag_index: int, *, soft: bool) -> float:
    """The fixture's annotation of song ``song_index`` for vocabulary column ``tag_index``."""
    if soft:
        return round(((song_index * 7 + tag_index * 3) % 11) / 10, 1)
    return float((song_index + tag_index) % 2)


def make_cal500(
    tmp_path: Path,
    *,
    quirks: bool = True,
    duration_s: float = 2.0,
    ext: str = ".mp3",
    n_extra: int = 0,
    sr: int = SR,
) -> Path:
    """CAL500 as downloaded (a 40-tag vocabulary: the 18 positive and 18 NOT- emotion tags and 4 others);
    returns the folder holding ``CAL500/``.

    Values: :func:`cal500_value` (hard: ``(song + tag) % 2``; soft: ``((7 song + 3 tag) % 11) / 10``).
    Quirks: a fifth song line ``ghost-song`` whose hard row has 39 values (skipped) and no audio; a soft value
    of 1.04 (clipped to 1) for song 0, column 0; ``mp3/extra-song.mp3`` without a line in songNames.txt;
    ``nirvana-lithium.mp3`` is garbage. ``n_extra`` adds clean songs ``artist<i>-song<i>`` (after the others).
    """
    root = tmp_path / "cal500"
    base = root / "CAL500"
    extra = [f"artist{i}-song{i}" for i in range(n_extra)]
    songs = list(CAL500_SONGS) + (["ghost-song"] if quirks else []) + extra
    hard, soft = [], []
    for i, _ in enumerate(songs):
        h = [f"{cal500_value(i, j, soft=False):g}" for j in range(len(CAL500_VOCAB))]
        s = [f"{cal500_value(i, j, soft=True):g}" for j in range(len(CAL500_VOCAB))]
        if quirks and i == 0:
            s[0] = "1.04"
        if quirks and songs[i] == "ghost-song":
            h = h[:-1]
        hard.append(",".join(h))
        soft.append(",".join(s))
    _write(base / "songNames.txt", "\n".join(songs) + "\n")
    _write(base / "vocab.txt", "\n".join(CAL500_VOCAB) + "\n")
    _write(base / "hardAnnotations.txt", "\n".join(hard) + "\n")
    _write(base / "softAnnotations.txt", "\n".join(soft) + "\n")
    for i, song in enumerate(CAL500_SONGS + extra):
        if quirks and song == "nirvana-lithium":
            write_garbage(base / "mp3" / f"{song}{ext}")
        else:
            write_audio(base / "mp3" / f"{song}{ext}", duration_s, sr=sr, seed=i)
    if quirks:
        write_audio(base / "mp3" / f"extra-song{ext}", 1.0, sr=sr, seed=7)
    return root


CAL500EXP_TAGS = [
    "Emotion-Happy",
    "NOT-Emotion-Happy",
    "Emotion-Sad",
    "Genre-Rock",
    "Emotion-Calming_/_Soothing",
]


def make_cal500exp(
    tmp_path: Path,
    *,
    quirks: bool = True,
    duration_s: float = 4.0,
    ext: str = ".mp3",
    n_extra: int = 0,
    sr: int = SR,
) -> Path:
    """CAL500exp label folders; returns its root. The CAL500 audio is written beside it, in
    ``<tmp_path>/CAL500/mp3/`` (where the adapter looks when ``audio_dir`` is not given).

    Tags (header): ``Start_Time,End_Time,`` + :data:`CAL500EXP_TAGS`. Song ``beatles-help`` has segments
    (0, 1.5) with tags 1,0,0,1,0 and (1.5, 3.5) with 0,1,1,0,1 (hard; soft files hold halves).
    ``abba-dancing_queen`` has one segment (0.5, 2.0) with 1,0,1,0,1.
    Quirks: ``2pac-trapped.csv`` has no header (names from vocab.txt) and a row with end <= start (skipped);
    ``nirvana-lithium.csv`` is empty; ``abba-dancing_queen`` has no audio. ``n_extra`` adds clean songs
    ``artist<i>-song<i>`` with segments (0, 2) and (2, 3.5), tags alternating by song.
    """
    root = tmp_path / "CAL500exp"
    head = "Start_Time,End_Time," + ",".join(CAL500EXP_TAGS)
    songs = {
        "beatles-help": ["0,1.5,1,0,0,1,0", "1.5,3.5,0,1,1,0,1"],
        "abba-dancing_queen": ["0.5,2.0,1,0,1,0,1"],
    }
    for i in range(n_extra):
        a, b = ("1,0,1,0,0", "0,1,0,1,1") if i % 2 else ("0,1,0,1,1", "1,0,1,0,0")
        songs[f"artist{i}-song{i}"] = [f"0,2,{a}", f"2,3.5,{b}"]
    for kind, scale in (("Hard", 1.0), ("Soft", 0.5)):
        d = root / f"SegLabel{kind}" / f"SegLabel{kind}"
        for song, rows in songs.items():
            scaled = []
            for r in rows:
                c = r.split(",")
                scaled.append(",".join(c[:2] + [f"{float(x) * scale:g}" for x in c[2:]]))
            _write(d / f"{song}.csv", head + "\n" + "\n".join(scaled) + "\n")
        if quirks:
            _write(d / "2pac-trapped.csv", f"0,2,{scale:g},0,0,0,0\n3,3,1,1,1,1,1\n")
            _write(d / "nirvana-lithium.csv", "")
    _write(root / "CAL500_noAudioFeatures" / "vocab.txt", "\n".join(CAL500EXP_TAGS) + "\n")
    extra = tuple(k for k in songs if k.startswith("artist"))
    with_audio = ("beatles-help", "2pac-trapped", "nirvana-lithium") + extra if quirks else tuple(songs)
    for i, song in enumerate(with_audio):
        write_audio(tmp_path / "CAL500" / "mp3" / f"{song}{ext}", duration_s, sr=sr, seed=i)
    return root


# ------------------------------------------------------------------------------------------------------------
# EMOPIA 1.0 (MIDI clips; the adapter renders them with FluidSynth)
# ------------------------------------------------------------------------------------------------------------
CLEAN_EMOPIA = {  # id -> (quadrant, split)
    "Q1_songA_0": (1, "train"),
    "Q2_song_B_1": (2, "train"),  # YouTube ids may contain "_"
    "Q3_songC_0": (3, "val"),
    "Q4_songD_2": (4, "test"),
}


def write_clip(path: Path, pitches=(60, 64), seconds: float = 1.0) -> Path:
    """A tiny piano clip: the pitches one after another, ``seconds`` in all at 120 bpm."""
    import mido

    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    ticks = int(960 * seconds / len(pitches))
    for p in pitches:
        tr.append(mido.Message("note_on", note=p, velocity=80, time=0))
        tr.append(mido.Message("note_off", note=p, velocity=0, time=ticks))
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(str(path))
    return path


def make_emopia(tmp_path: Path, *, quirks: bool = True) -> Path:
    """EMOPIA 1.0's layout: midis/, label.csv (ID,4Q,annotator), split/{train,val,test}_clip.csv (,clip_name).

    Quirks: a BOM and spaces in label.csv, an ID written with ``.mid``, a duplicate row, a quadrant of 5, a clip
    whose name says Q1 but labelled 2, a labelled clip without MIDI, a MIDI without label, a broken MIDI, a
    stray file in midis/, split names with ``.mid`` and spaces, a clip in two split files, an entry naming no
    clip, and clips in no split file.
    """
    root = tmp_path / "EMOPIA_1.0"
    for i, tid in enumerate(CLEAN_EMOPIA):
        write_clip(root / "midis" / f"{tid}.mid", pitches=(60 + i, 64 + i, 67 + i))
    labels = ["ID,4Q,annotator"] + [f"{tid},{q},{'ABCD'[q - 1]}" for tid, (q, _) in CLEAN_EMOPIA.items()]
    splits = {s: [tid for tid, (_, sp) in CLEAN_EMOPIA.items() if sp == s] for s in ("train", "val", "test")}
    if quirks:
        write_clip(root / "midis" / "Q1_songE_0.mid")
        write_clip(root / "midis" / "Q4_orphan_0.mid")
        write_clip(root / "midis" / "Q1_badq_0.mid")
        (root / "midis" / "Q2_broken_0.mid").write_bytes(b"MThd\x00\x00\x00\x06 truncated")
        (root / "midis" / "notes.txt").write_text("not a midi")
        labels[1] = " Q1_songA_0.mid , 1 , A "
        labels += ["Q1_songA_0,1,B", "Q1_songE_0,2,C", "Q3_ghost_0,3,D", "Q2_broken_0,2,A", "Q1_badq_0,5,A"]
        splits["train"] += ["Q1_songE_0", "Q2_broken_0 "]
        splits["test"] += ["Q1_songA_0", "Q9_nothing_0", "Q3_ghost_0"]
    (root / "label.csv").write_text("\ufeff" + "\n".join(labels) + "\n", encoding="utf-8")
    for s, ids in splits.items():
        rows = [",clip_name"] + [f"{k},{tid}.mid" for k, tid in enumerate(ids)]
        (root / "split").mkdir(exist_ok=True)
        (root / "split" / f"{s}_clip.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def piano_piece(
    seed: int,
    *,
    mode: str = "major",
    bpm: float = 100.0,
    velocity: int = 80,
    bars: int = 4,
    register: int = 0,
):
    """A short piano piece (``mido.MidiFile``): a I-vi-IV-V (major) or i-VI-iv-v (minor) progression as held
    chords under an eighth-note melody from the scale, in a random key ``register`` semitones above A3-G#4;
    ``bpm`` and ``velocity`` as given."""
    import mido

    rng = np.random.default_rng(seed)
    tonic = 57 + register + int(rng.integers(0, 12))
    scale = [0, 2, 4, 5, 7, 9, 11] if mode == "major" else [0, 2, 3, 5, 7, 8, 10]
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
    events = []  # (tick, on, pitch, velocity)
    for bar in range(bars):
        degree = [0, 5, 3, 4][bar % 4]
        t0 = bar * 4 * 480
        for i in (0, 2, 4):
            d = degree + i
            p = tonic - 12 + scale[d % 7] + 12 * (d // 7)
            events += [(t0, 1, p, max(1, velocity - 20)), (t0 + 4 * 480 - 10, 0, p, 0)]
        for e in range(8):
            p = tonic + 12 + scale[int(rng.integers(0, 7))]
            events += [(t0 + e * 240, 1, p, velocity), (t0 + e * 240 + 230, 0, p, 0)]
    events.sort(key=lambda ev: (ev[0], ev[1]))
    last = 0
    for tick, on, p, v in events:
        tr.append(mido.Message("note_on" if on else "note_off", note=p, velocity=v, time=tick - last))
        last = tick
    return mid


#: The cues of :func:`make_emopia_cues` per quadrant: (mode, tempo in bpm, velocity, register in semitones).
QUADRANT_CUES = {
    1: ("major", 150, 105, 12),
    2: ("minor", 150, 105, -5),
    3: ("minor", 70, 45, -5),
    4: ("major", 70, 45, 12),
}


def make_emopia_cues(tmp_path: Path, *, per_quadrant: int = 10, split=(6, 2, 2)) -> Path:
    """An EMOPIA-shaped release whose quadrants follow musical cues: arousal from tempo and loudness, valence
    from the mode and the register (:data:`QUADRANT_CUES`); one clip per song, ``split`` clips per quadrant in train/val/test.
    Returns the release folder."""
    root = tmp_path / "EMOPIA_cues"
    (root / "midis").mkdir(parents=True)
    (root / "split").mkdir()
    labels, splits = ["ID,4Q,annotator"], {"train": [], "val": [], "test": []}
    names = ["train"] * split[0] + ["val"] * split[1] + ["test"] * split[2]
    for q, (mode, bpm, vel, register) in QUADRANT_CUES.items():
        for k in range(per_quadrant):
            tid = f"Q{q}_song{q}x{k}_0"
            piano_piece(
                100 * q + k, mode=mode, bpm=bpm, velocity=vel, bars=4 if bpm > 100 else 2, register=register
            ).save(str(root / "midis" / f"{tid}.mid"))
            labels.append(f"{tid},{q},A")
            splits[names[k % len(names)]].append(tid)
    (root / "label.csv").write_text("\n".join(labels) + "\n")
    for s, ids in splits.items():
        rows = [",clip_name"] + [f"{i},{tid}.mid" for i, tid in enumerate(ids)]
        (root / "split" / f"{s}_clip.csv").write_text("\n".join(rows) + "\n")
    return root


def make_4q(tmp_path: Path, *, per_quadrant: int = 2, duration_s: float = 10.0) -> Path:
    """A clean 4Q-shaped release (``Q1..Q4/<Song>.wav`` and ``metadata.csv``): ``per_quadrant`` clips per
    quadrant, one artist per clip except two clips that share one (so artist splits have something to keep
    together). The quirks of the real release are in ``tests/datasets/test_datasets_fourq.py``."""
    root = tmp_path / "4q"
    rows = ["Song,Artist,Title,Quadrant,PQuad,MoodsStr,MoodsStrSplit,GenresStr"]
    k = 0
    for q in range(1, 5):
        for _ in range(per_quadrant):
            song = f"MT{k:04d}"
            write_audio(root / f"Q{q}" / f"{song}.wav", duration_s, seed=k, sr=16000)
            artist = "Artist 0" if k < 2 else f"Artist {k}"
            rows.append(f'{song},{artist},Title {k},Q{q},1.0,"Calm; Warm","Calm; Warm",Pop/Rock')
            k += 1
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


def make_vgmidi(tmp_path: Path, *, quirks: bool = True) -> Path:
    """VGMIDI's layout as the project holds it: midi/<Series>_<Platform>_<Game>_<Title>.mid, dynamic_per_bar.csv
    (one row per slot) and static_per_piece.csv. Three pieces of two series, 2 s each, two 1 s slots.

    Quirks: a BOM, a slot row naming no MIDI, a duplicate (piece, bar), a non-numeric value, a value above 1,
    a slot ending before it starts, a MIDI without rows, a dropped slot in the middle (a gap), and a static row
    that disagrees with its slots."""
    root = tmp_path / "vgmidi-given"
    pieces = {
        "Zelda_N64_Ocarina_Song of Storms": [(0.0, 1.0, 0.2, 0.4), (1.0, 2.0, 0.3, 0.5)],
        "Zelda_N64_Ocarina_Lost_Woods": [(0.0, 1.0, 0.1, -0.1), (1.0, 2.0, 0.1, -0.2)],
        "Final Fantasy_PS1_FF7_Prelude": [
            (0.0, 1.0, -0.4, -0.3),
            (1.0, 2.0, -0.2, -0.1),
            (2.0, 3.0, -0.3, 0.0),
        ],
    }
    rows = ["midi_path,piece,bar,t_start_s,t_end_s,valence_mean,arousal_mean"]
    static = ["midi_path,piece,valence_mean,arousal_mean"]
    for name, slots in pieces.items():
        write_clip(root / "midi" / f"{name}.mid", seconds=2.0)
        kept = [s for i, s in enumerate(slots) if not (quirks and name.endswith("Prelude") and i == 1)]
        for i, (s, e, v, a) in enumerate(slots):
            if s in [k[0] for k in kept]:
                rows.append(f"midi/{name}.mid,{name},{i},{s},{e},{v},{a}")
        v = sum(k[2] for k in kept) / len(kept)
        a = sum(k[3] for k in kept) / len(kept)
        static.append(f"midi/{name}.mid,{name},{v + (0.2 if quirks and 'Lost' in name else 0):.4f},{a:.4f}")
    if quirks:
        write_clip(root / "midi" / "Other_PC_Unlabelled_Theme.mid")
        rows += [
            "midi/Ghost_PC_None_Nothing.mid,Ghost_PC_None_Nothing,0,0.0,1.0,0.1,0.1",
            "midi/x.mid,Zelda_N64_Ocarina_Song of Storms,1,1.0,2.0,0.9,0.9",  # duplicate (piece, bar)
            "midi/x.mid,Zelda_N64_Ocarina_Lost_Woods,2,2.0,3.0,abc,0.1",
            "midi/x.mid,Zelda_N64_Ocarina_Lost_Woods,3,3.0,4.0,1.5,0.1",
            "midi/x.mid,Zelda_N64_Ocarina_Lost_Woods,4,5.0,4.0,0.1,0.1",
        ]
    (root / "dynamic_per_bar.csv").write_text(
        ("\ufeff" if quirks else "") + "\n".join(rows) + "\n", encoding="utf-8"
    )
    (root / "static_per_piece.csv").write_text("\n".join(static) + "\n", encoding="utf-8")
    return root
