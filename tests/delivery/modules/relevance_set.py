"""A relevance set for search: a synthetic but realistic catalogue and queries people type.

The catalogue mixes famous artists (with play counts to match) and the obscure
near-matches that make search hard: tribute bands spelt like a typo of the famous name
(``Metalica``), songs sharing a famous title, artists whose name is a prefix of another's,
names made of punctuation, accents, CJK and Cyrillic scripts, plus a few hundred filler
artists with made-up words. Every case names the result that must be in the top 3.

Used by ``test_search_relevance.py`` on both backends (and usable by hand:
``python -m tests.delivery.modules.relevance_set`` prints the misses on SQLite).
Nothing here is known to the search code: the queries exercise the general rules
(normalisation, typo tolerance, ranking), never a name.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from delivery.db import Database
from delivery.modules.search import SearchService
from delivery.modules.search_query import parse_query
from delivery.modules.track_index import IndexedTrack, TrackIndex


@dataclass(frozen=True)
class Artist:
    name: str
    plays: int  # the artist's total; its tracks get a decreasing share
    genre: str
    albums: dict[str, tuple[int, list[str]]] = field(default_factory=dict)


CATALOGUE: list[Artist] = [
    # -- famous names ------------------------------------------------------------------
    Artist(
        "Radiohead",
        900_000,
        "Alternative Rock",
        {
            "Pablo Honey": (1993, ["Creep", "Anyone Can Play Guitar", "Stop Whispering"]),
            "OK Computer": (1997, ["Paranoid Android", "Karma Police", "No Surprises"]),
            "Kid A": (2000, ["Everything in Its Right Place", "Idioteque"]),
        },
    ),
    Artist(
        "Metallica",
        1_200_000,
        "Heavy Metal",
        {
            "Metallica": (1991, ["Enter Sandman", "Nothing Else Matters", "The Unforgiven"]),
            "Master of Puppets": (1986, ["Master of Puppets", "Battery", "Orion"]),
        },
    ),
    Artist(
        "Beyoncé",
        1_100_000,
        "R&B",
        {
            "I Am... Sasha Fierce": (2008, ["Halo", "Single Ladies", "If I Were a Boy"]),
            "Lemonade": (2016, ["Formation", "Hold Up", "Sorry"]),
        },
    ),
    Artist(
        "Sigur Rós",
        300_000,
        "Post-Rock",
        {
            "Ágætis byrjun": (1999, ["Svefn-g-englar", "Starálfur", "Olsen Olsen"]),
            "Takk...": (2005, ["Hoppípolla", "Glósóli", "Sæglópur"]),
        },
    ),
    Artist(
        "Motörhead",
        400_000,
        "Heavy Metal",
        {"Ace of Spades": (1980, ["Ace of Spades", "Love Me Like a Reptile"])},
    ),
    Artist(
        "AC/DC",
        1_000_000,
        "Hard Rock",
        {
            "Highway to Hell": (1979, ["Highway to Hell", "Girls Got Rhythm"]),
            "Back in Black": (1980, ["Back in Black", "Hells Bells", "Shoot to Thrill"]),
        },
    ),
    Artist(
        "P!nk",
        700_000,
        "Pop",
        {
            "Missundaztood": (2001, ["Get the Party Started", "Just Like a Pill"]),
            "Funhouse": (2008, ["So What", "Sober"]),
        },
    ),
    Artist(
        "!!!", 60_000, "Dance-Punk", {"Myth Takes": (2007, ["Must Be the Moon", "Heart of Hearts"])}
    ),
    Artist(
        "Mr.Children",
        500_000,
        "J-Pop",
        {"Atomic Heart": (1994, ["Innocent World", "CROSS ROAD", "Tomorrow Never Knows"])},
    ),
    Artist(
        "will.i.am",
        350_000,
        "Hip Hop",
        {"#willpower": (2013, ["Scream & Shout", "This Is Love"])},
    ),
    Artist(
        "Ke$ha",
        450_000,
        "Pop",
        {"Animal": (2010, ["TiK ToK", "Your Love Is My Drug", "Blah Blah Blah"])},
    ),
    Artist(
        "宇多田ヒカル",
        600_000,
        "J-Pop",
        {"First Love": (1999, ["First Love", "Automatic", "traveling"])},
    ),
    Artist("周杰伦", 800_000, "Mandopop", {"叶惠美": (2003, ["晴天", "东风破", "以父之名"])}),
    Artist(
        "椎名林檎",
        250_000,
        "J-Rock",
        {"無罪モラトリアム": (1999, ["丸の内サディスティック", "歌舞伎町の女王"])},
    ),
    Artist("방탄소년단", 950_000, "K-Pop", {"Map of the Soul: 7": (2020, ["ON", "Black Swan"])}),
    Artist(
        "Кино",
        400_000,
        "Russian Rock",
        {"Группа крови": (1988, ["Группа крови", "Кукушка", "Звезда по имени Солнце"])},
    ),
    Artist(
        "Земфира", 300_000, "Russian Rock", {"Земфира": (1999, ["Ариведерчи", "СПИД", "Ромашки"])}
    ),
    Artist("Ленинград", 280_000, "Ska Punk", {"Хлеб": (2005, ["В Питере — пить", "Экспонат"])}),
    Artist("Ёлка", 150_000, "Pop", {"Точки расставлены": (2011, ["Прованс", "Около тебя"])}),
    Artist("Björk", 350_000, "Art Pop", {"Homogenic": (1997, ["Jóga", "Bachelorette", "Hunter"])}),
    Artist(
        "Mötley Crüe",
        300_000,
        "Glam Metal",
        {"Dr. Feelgood": (1989, ["Kickstart My Heart", "Dr. Feelgood"])},
    ),
    Artist(
        "Céline Dion",
        500_000,
        "Pop",
        {"Let's Talk About Love": (1997, ["My Heart Will Go On", "Immortality"])},
    ),
    Artist(
        "Édith Piaf",
        200_000,
        "Chanson",
        {"La Vie en rose": (1947, ["La Vie en rose", "Non, je ne regrette rien"])},
    ),
    Artist(
        "Ólafur Arnalds", 150_000, "Neoclassical", {"re:member": (2018, ["re:member", "saman"])}
    ),
    Artist(
        "Röyksopp",
        180_000,
        "Electronic",
        {"Melody A.M.": (2001, ["Eple", "Poor Leno", "Remind Me"])},
    ),
    Artist(
        "MØ",
        200_000,
        "Electropop",
        {"No Mythologies to Follow": (2014, ["Pilgrim", "Don't Wanna Dance"])},
    ),
    Artist(
        "Die Ärzte",
        220_000,
        "Punk Rock",
        {"Die Bestie in Menschengestalt": (1993, ["Schrei nach Liebe", "Mach die Augen zu"])},
    ),
    Artist("Café Tacvba", 160_000, "Rock en Español", {"Re": (1994, ["La Ingrata", "El Aparato"])}),
    Artist(
        "Guns N' Roses",
        900_000,
        "Hard Rock",
        {
            "Appetite for Destruction": (
                1987,
                ["Sweet Child o' Mine", "Welcome to the Jungle", "Paradise City"],
            )
        },
    ),
    Artist(
        "Simon & Garfunkel",
        500_000,
        "Folk Rock",
        {
            "Bridge over Troubled Water": (
                1970,
                ["Bridge over Troubled Water", "The Boxer", "Cecilia"],
            )
        },
    ),
    Artist(
        "Florence + The Machine",
        450_000,
        "Indie Rock",
        {"Lungs": (2009, ["Dog Days Are Over", "You've Got the Love"])},
    ),
    Artist("Jay-Z", 700_000, "Hip Hop", {"The Blueprint": (2001, ["Izzo (H.O.V.A.)", "Takeover"])}),
    Artist(
        "R.E.M.",
        500_000,
        "Alternative Rock",
        {"Out of Time": (1991, ["Losing My Religion", "Shiny Happy People"])},
    ),
    Artist(
        "t.A.T.u.",
        250_000,
        "Pop",
        {"200 km/h in the Wrong Lane": (2002, ["All the Things She Said", "Not Gonna Get Us"])},
    ),
    Artist(
        "blink-182",
        550_000,
        "Pop Punk",
        {"Enema of the State": (1999, ["All the Small Things", "What's My Age Again?"])},
    ),
    Artist(
        "A$AP Rocky",
        400_000,
        "Hip Hop",
        {"Long. Live. ASAP": (2013, ["F**kin' Problems", "Goldie"])},
    ),
    Artist(
        "Coldplay",
        1_000_000,
        "Pop Rock",
        {
            "Parachutes": (2000, ["Yellow", "Trouble", "Shiver"]),
            "Viva la Vida": (2008, ["Viva la Vida", "Violet Hill"]),
        },
    ),
    Artist(
        "Nirvana",
        1_000_000,
        "Grunge",
        {"Nevermind": (1991, ["Smells Like Teen Spirit", "Come as You Are", "Lithium"])},
    ),
    Artist(
        "Eminem",
        1_100_000,
        "Hip Hop",
        {"The Marshall Mathers LP": (2000, ["Stan", "The Real Slim Shady"])},
    ),
    Artist("Rammstein", 600_000, "Industrial Metal", {"Sehnsucht": (1997, ["Du hast", "Engel"])}),
    Artist(
        "Taylor Swift", 1_300_000, "Pop", {"1989": (2014, ["Shake It Off", "Blank Space", "Style"])}
    ),
    Artist(
        "Led Zeppelin",
        800_000,
        "Hard Rock",
        {"Led Zeppelin IV": (1971, ["Stairway to Heaven", "Black Dog", "Rock and Roll"])},
    ),
    Artist(
        "Adele",
        1_000_000,
        "Soul",
        {"21": (2011, ["Rolling in the Deep", "Someone Like You", "Set Fire to the Rain"])},
    ),
    Artist(
        "Queen",
        1_200_000,
        "Rock",
        {
            "A Night at the Opera": (1975, ["Bohemian Rhapsody", "You're My Best Friend"]),
            "The Works": (1984, ["Radio Ga Ga", "I Want to Break Free"]),
        },
    ),
    Artist(
        "Kraftwerk",
        300_000,
        "Electronic",
        {"Trans-Europe Express": (1977, ["Trans-Europe Express", "Europe Endless"])},
    ),
    Artist(
        "The Beatles",
        1_300_000,
        "Rock",
        {
            "Help!": (1965, ["Yesterday", "Help!", "Ticket to Ride"]),
            "Abbey Road": (1969, ["Come Together", "Something", "Here Comes the Sun"]),
        },
    ),
    Artist(
        "Daft Punk",
        800_000,
        "French House",
        {
            "Discovery": (
                2001,
                ["One More Time", "Digital Love", "Harder, Better, Faster, Stronger"],
            )
        },
    ),
    Artist(
        "Pink Floyd",
        1_000_000,
        "Progressive Rock",
        {"The Dark Side of the Moon": (1973, ["Time", "Money", "Us and Them"])},
    ),
    Artist("TLC", 400_000, "R&B", {"CrazySexyCool": (1994, ["Creep", "Waterfalls"])}),
    Artist(
        "Sade", 350_000, "Soul", {"Diamond Life": (1984, ["Smooth Operator", "Your Love Is King"])}
    ),
    Artist(
        "Muse",
        600_000,
        "Alternative Rock",
        {"Black Holes and Revelations": (2006, ["Supermassive Black Hole", "Starlight"])},
    ),
    Artist(
        "Carpenters", 300_000, "Soft Rock", {"Now & Then": (1973, ["Yesterday Once More", "Sing"])}
    ),
    Artist(
        "Sepultura",
        250_000,
        "Thrash Metal",
        {"Roots": (1996, ["Roots Bloody Roots", "Ratamahatta"])},
    ),
    Artist("The Weeknd", 1_200_000, "R&B", {"After Hours": (2020, ["Blinding Lights"])}),
    Artist("Panic! at the Disco", 700_000, "Pop Rock", {"Fever": (2005, ["I Write Sins"])}),
    Artist("Salt-N-Pepa", 300_000, "Hip Hop", {"Very Necessary": (1993, ["Shoop", "Whatta Man"])}),
    Artist("Ed Sheeran", 1_400_000, "Pop", {"÷": (2017, ["Shape of You", "Perfect"])}),
    Artist("あいみょん", 500_000, "J-Pop", {"瞬間的シックスセンス": (2019, ["マリーゴールド"])}),
    Artist("Би-2", 300_000, "Russian Rock", {"Би-2": (2000, ["Полковнику никто не пишет"])}),
    # -- obscure near-matches ------------------------------------------------------------
    Artist("Weekend Warriors", 800, "Rock", {"Saturday": (2011, ["Weekend", "Blinding Sun"])}),
    Artist("Ed Sheeran Tribute", 400, "Pop", {"Covers": (2018, ["Shape of You (Cover)"])}),
    Artist("Perfect Strangers", 2_000, "Rock", {"Perfect": (2012, ["Perfect", "Strangers"])}),
    Artist(
        "Metalica",
        900,
        "Heavy Metal",
        {"Tribute to the Black Album": (2015, ["Enter Sandman (Live)", "Sad but True (Live)"])},
    ),
    Artist(
        "Metallic Ants",
        300,
        "Stoner Rock",
        {"Anthills": (2019, ["Queen of the Colony", "Radio Silence"])},
    ),
    Artist(
        "Radiohead Tribute Quartet",
        2_000,
        "Classical Crossover",
        {"Strings Play Radiohead": (2010, ["Creep", "Karma Police", "No Surprises"])},
    ),
    Artist(
        "Beyonce Karaoke Stars",
        500,
        "Karaoke",
        {
            "Sing Like Beyoncé": (
                2012,
                ["Halo (Karaoke Version)", "Single Ladies (Karaoke Version)"],
            )
        },
    ),
    Artist(
        "Sunday Drivers",
        1_200,
        "Indie Pop",
        {"Tape Deck": (2009, ["Radiohead", "Coldplay on the Radio", "Creep Show"])},
    ),
    Artist("The Creepers", 800, "Garage Rock", {"Night Moves": (2004, ["Creep", "Creeping Up"])}),
    Artist(
        "AC/DShe",
        3_000,
        "Hard Rock",
        {"Live at the Roxy": (2003, ["Highway to Hell (Live)", "T.N.T. (Live)"])},
    ),
    Artist(
        "Acid Drinkers",
        5_000,
        "Thrash Metal",
        {"Infernal Connection": (1994, ["Drug Dealer", "Slow & Stoned"])},
    ),
    Artist("Pink Martini", 90_000, "Lounge", {"Sympathique": (1997, ["Sympathique", "Amado Mio"])}),
    Artist(
        "Kinobe",
        20_000,
        "Downtempo",
        {"Soundphiles": (2000, ["Slip into Something More Comfortable"])},
    ),
    Artist(
        "Queensrÿche",
        150_000,
        "Progressive Metal",
        {"Empire": (1990, ["Silent Lucidity", "Jet City Woman"])},
    ),
    Artist(
        "Queens of the Stone Age",
        400_000,
        "Stoner Rock",
        {"Songs for the Deaf": (2002, ["No One Knows", "Go with the Flow"])},
    ),
    Artist(
        "Nirvana (UK)",
        5_000,
        "Psychedelic Pop",
        {"The Story of Simon Simopath": (1968, ["Pentecost Hotel", "Rainbow Chaser"])},
    ),
    Artist("Eminence", 2_000, "Trance", {"Into the Light": (2008, ["Lumen", "Stan Still"])}),
    Artist("Adelaide", 1_500, "Folk", {"Harbour": (2016, ["Home", "Adel's Song"])}),
    Artist("Coldplayers", 700, "Cover Band", {"Yellow Again": (2018, ["Yellow", "Clocks"])}),
    Artist(
        "Halo Effect",
        3_000,
        "Melodic Death Metal",
        {"Days of the Lost": (2022, ["Halo", "Shadowminds"])},
    ),
    Artist(
        "Yesterday Club", 600, "Indie Pop", {"Polaroids": (2017, ["Yesterday", "Tomorrow Maybe"])}
    ),
    Artist(
        "Bohemian Cats",
        400,
        "Jazz",
        {"Rhapsodies": (2011, ["Bohemian Rhapsody in Blue", "Cat Walk"])},
    ),
    Artist("Kinoteatr", 700, "Post-Punk", {"Плёнка": (2015, ["Кинопленка", "Сеанс"])}),
    Artist(
        "Земфира Трибьют",
        300,
        "Russian Rock",
        {"Каверы": (2014, ["Ариведерчи (кавер)", "Хочешь?"])},
    ),
    Artist("宇多田", 400, "J-Pop", {"光": (2002, ["光のうた"])}),
    Artist("杰伦乐队", 500, "Mandopop", {"晴天 Live": (2010, ["晴天 (Live)", "稻香 (Live)"])}),
    Artist(
        "Rammstein Tribute",
        900,
        "Industrial Metal",
        {"Feuer": (2012, ["Du hast (Cover)", "Sonne (Cover)"])},
    ),
    Artist("Home", 8_000, "Synthwave", {"Odyssey": (2014, ["Resonance", "New Machines"])}),
    Artist(
        "Swift Rivers", 1_000, "Country", {"Taylor Made": (2019, ["Taylor Made", "Blank Page"])}
    ),
]

# Popularity ties: several tracks called "Home"; the most played must come first.
HOME_TRACKS = [
    ("Michael Bublé", "Home", 600_000),
    ("Edward Sharpe & The Magnetic Zeros", "Home", 300_000),
    ("Daughtry", "Home", 150_000),
    ("Phillip Phillips", "Home", 250_000),
    ("Dotan", "Home", 20_000),
]


@dataclass(frozen=True)
class Case:
    q: str
    kind: str  # track | artist | album
    expect: str  # the name (artist), title (album) or "title / artist" (track)
    why: str


CASES: list[Case] = [
    # diacritics and case
    Case("beyonce", "artist", "Beyoncé", "accent dropped"),
    Case("BEYONCÉ", "artist", "Beyoncé", "case"),
    Case("sigur ros", "artist", "Sigur Rós", "accent dropped, two words"),
    Case("motorhead", "artist", "Motörhead", "umlaut dropped"),
    Case("bjork", "artist", "Björk", "umlaut dropped"),
    Case("motley crue", "artist", "Mötley Crüe", "umlauts dropped"),
    Case("celine dion", "artist", "Céline Dion", "acute dropped"),
    Case("edith piaf", "artist", "Édith Piaf", "capital acute dropped"),
    Case("olafur arnalds", "artist", "Ólafur Arnalds", "Icelandic"),
    Case("royksopp", "artist", "Röyksopp", "ö"),
    Case("mø", "artist", "MØ", "ø typed"),
    Case("mo", "artist", "MØ", "ø as o, two letters"),
    Case("die arzte", "artist", "Die Ärzte", "ä as a"),
    Case("die aerzte", "artist", "Die Ärzte", "ä as ae: one edit"),
    Case("cafe tacvba", "artist", "Café Tacvba", "é"),
    Case("queensryche", "artist", "Queensrÿche", "ÿ"),
    Case("agaetis byrjun", "album", "Ágætis byrjun", "æ spelt ae"),
    Case("hoppipolla", "track", "Hoppípolla / Sigur Rós", "í"),
    # punctuation
    Case("ac/dc", "artist", "AC/DC", "typed exactly"),
    Case("acdc", "artist", "AC/DC", "without the slash"),
    Case("ac dc", "artist", "AC/DC", "a space for the slash"),
    Case("p!nk", "artist", "P!nk", "typed exactly"),
    Case("pink", "artist", "P!nk", "! read as i"),
    Case("!!!", "artist", "!!!", "symbols only"),
    Case("mr.children", "artist", "Mr.Children", "a dot, typed exactly"),
    Case("mr children", "artist", "Mr.Children", "a space for the dot"),
    Case("mrchildren", "artist", "Mr.Children", "joined"),
    Case("will.i.am", "artist", "will.i.am", "dots, typed exactly"),
    Case("will i am", "artist", "will.i.am", "spaces for the dots"),
    Case("ke$ha", "artist", "Ke$ha", "typed exactly"),
    Case("kesha", "artist", "Ke$ha", "$ read as s"),
    Case("guns n roses", "artist", "Guns N' Roses", "apostrophe dropped"),
    Case("gunsnroses", "artist", "Guns N' Roses", "all joined"),
    Case("guns and roses", "artist", "Guns N' Roses", "n' said as and"),
    Case("simon and garfunkel", "artist", "Simon & Garfunkel", "& spelt out"),
    Case("simon & garfunkel", "artist", "Simon & Garfunkel", "& typed"),
    Case("florence and the machine", "artist", "Florence + The Machine", "+ spelt and"),
    Case("jay z", "artist", "Jay-Z", "hyphen as a space"),
    Case("jayz", "artist", "Jay-Z", "hyphen dropped"),
    Case("rem", "artist", "R.E.M.", "initials joined"),
    Case("tatu", "artist", "t.A.T.u.", "dots dropped"),
    Case("blink 182", "artist", "blink-182", "hyphen as a space"),
    Case("asap rocky", "artist", "A$AP Rocky", "$ read as s"),
    Case("tiktok", "track", "TiK ToK / Ke$ha", "two words joined"),
    Case("radio head", "artist", "Radiohead", "one word split"),
    # unsegmented scripts and Cyrillic
    Case("宇多田ヒカル", "artist", "宇多田ヒカル", "whole name"),
    Case("ヒカル", "artist", "宇多田ヒカル", "end of the name"),
    Case("多田ヒ", "artist", "宇多田ヒカル", "middle of the name"),
    Case("周杰伦", "artist", "周杰伦", "whole name"),
    Case("杰伦", "artist", "周杰伦", "end of the name"),
    Case("林檎", "artist", "椎名林檎", "end of the name"),
    Case("소년단", "artist", "방탄소년단", "Hangul, end of the name"),
    Case("晴天", "track", "晴天 / 周杰伦", "CJK title"),
    Case("кино", "artist", "Кино", "Cyrillic"),
    Case("КИНО", "artist", "Кино", "Cyrillic case"),
    Case("земфира", "artist", "Земфира", "Cyrillic"),
    Case("земфра", "artist", "Земфира", "Cyrillic typo"),
    Case("елка", "artist", "Ёлка", "ё as е"),
    Case("группа крови", "track", "Группа крови / Кино", "Cyrillic title"),
    # prefixes as typed
    Case("radi", "artist", "Radiohead", "prefix"),
    Case("metal", "artist", "Metallica", "prefix shared with obscure names"),
    Case("beyon", "artist", "Beyoncé", "prefix"),
    Case("sigur r", "artist", "Sigur Rós", "prefix of the second word"),
    Case("coldp", "artist", "Coldplay", "prefix"),
    Case("daft pu", "artist", "Daft Punk", "prefix"),
    Case("the beat", "artist", "The Beatles", "prefix"),
    Case("земф", "artist", "Земфира", "Cyrillic prefix"),
    Case("smells like teen", "track", "Smells Like Teen Spirit / Nirvana", "title prefix"),
    Case("stairway to he", "track", "Stairway to Heaven / Led Zeppelin", "title prefix"),
    # typos
    Case("metalica", "artist", "Metallica", "typo that is also a tribute band's name"),
    Case("metallca", "artist", "Metallica", "letter dropped"),
    Case("metalika", "artist", "Metallica", "two typos"),
    Case("beyonse", "artist", "Beyoncé", "typo"),
    Case("radiohed", "artist", "Radiohead", "letter dropped"),
    Case("radiohaed", "artist", "Radiohead", "two letters swapped"),
    Case("coldpaly", "artist", "Coldplay", "two letters swapped"),
    Case("nirvanna", "artist", "Nirvana", "letter doubled"),
    Case("eminen", "artist", "Eminem", "letter changed"),
    Case("rammstien", "artist", "Rammstein", "swap"),
    Case("taylor swfit", "artist", "Taylor Swift", "swap in the second word"),
    Case("led zepelin", "artist", "Led Zeppelin", "letter dropped"),
    Case("kraftwerc", "artist", "Kraftwerk", "letter changed"),
    Case("qeen", "artist", "Queen", "short name, letter dropped"),
    Case("bohemian rapsody", "track", "Bohemian Rhapsody / Queen", "typo in a title"),
    Case("enter sandmann", "track", "Enter Sandman / Metallica", "typo in a title"),
    Case("земфирра", "artist", "Земфира", "Cyrillic letter doubled"),
    # titles, ranking and popularity
    Case("creep", "track", "Creep / Radiohead", "same title by many: the most played"),
    Case("radiohead creep", "track", "Creep / Radiohead", "artist and title"),
    Case("creep radiohead", "track", "Creep / Radiohead", "title and artist"),
    Case("bohemian rhapsody", "track", "Bohemian Rhapsody / Queen", "exact title"),
    Case("enter sandman", "track", "Enter Sandman / Metallica", "original above the tribute"),
    Case("halo", "track", "Halo / Beyoncé", "same title by others"),
    Case("yesterday", "track", "Yesterday / The Beatles", "exact title, longer titles around"),
    Case("home", "track", "Home / Michael Bublé", "popularity tie: five tracks called Home"),
    Case("radiohead", "track", "Radiohead / Sunday Drivers", "exact title above artist-only"),
    Case("ace of spades", "track", "Ace of Spades / Motörhead", "title"),
    Case("highway to hell", "track", "Highway to Hell / AC/DC", "original above the live cover"),
    Case("get the party started", "track", "Get the Party Started / P!nk", "title"),
    Case("first love", "track", "First Love / 宇多田ヒカル", "Latin title of a CJK artist"),
    Case("innocent world", "track", "Innocent World / Mr.Children", "title"),
    Case("yellow", "track", "Yellow / Coldplay", "original above the cover band"),
    Case("the weekend", "artist", "The Weeknd", "a common spelling of an odd name"),
    Case("weeknd", "artist", "The Weeknd", "without the article"),
    Case("panic at the disco", "artist", "Panic! at the Disco", "! dropped"),
    Case("salt n pepa", "artist", "Salt-N-Pepa", "hyphens as spaces"),
    Case("salt and pepa", "artist", "Salt-N-Pepa", "n said as and"),
    Case("shape of yuo", "track", "Shape of You / Ed Sheeran", "typo in a 3-letter word"),
    Case("perfect", "track", "Perfect / Ed Sheeran", "same title by others"),
    Case("アイミョン", "artist", "あいみょん", "katakana for hiragana"),
    Case("би 2", "artist", "Би-2", "Cyrillic with a digit"),
    Case("би2", "artist", "Би-2", "Cyrillic joined"),
    # field filters
    Case("artist:radiohead", "track", "Creep / Radiohead", "artist filter: most played"),
    Case("creep artist:radiohead", "track", "Creep / Radiohead", "word and artist filter"),
    Case("karma album:ok computer", "track", "Karma Police / Radiohead", "album filter"),
    Case("album:ok computer", "album", "OK Computer", "album filter on albums"),
    Case('artist:"sigur ros" hoppi', "track", "Hoppípolla / Sigur Rós", "quoted filter"),
    Case("genre:metal sandman", "track", "Enter Sandman / Metallica", "genre filter"),
    Case("genre:k-pop", "track", "ON / 방탄소년단", "genre only: most played"),
    Case("smells year:1991", "track", "Smells Like Teen Spirit / Nirvana", "year filter"),
    Case("track:creep", "track", "Creep / Radiohead", "title filter"),
    Case("halo artist:beyonse", "track", "Halo / Beyoncé", "typo in a filter"),
    Case("*", "artist", "Ed Sheeran", "everything, most played first"),
    # albums
    Case("ok computer", "album", "OK Computer", "album title"),
    Case("master of puppets", "album", "Master of Puppets", "album title"),
    Case("dark side of the moon", "album", "The Dark Side of the Moon", "album title"),
    Case("lemonade", "album", "Lemonade", "album title"),
]


def _version(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


SYLLABLES = [a + b for a in "bdfgklmnprstvz" for b in ("a", "e", "i", "o", "u", "ou")]


def _filler(rng: random.Random, n_artists: int) -> list[Artist]:
    """Made-up artists with made-up words: realistic noise in the index."""
    vocab = sorted(
        {"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))) for _ in range(1500)}
    )

    def words(k: int) -> str:
        return " ".join(rng.choice(vocab).capitalize() for _ in range(k))

    out = []
    for _ in range(n_artists):
        albums = {
            words(rng.randint(1, 3)): (
                rng.randint(1970, 2024),
                [words(rng.randint(1, 4)) for _ in range(4)],
            )
            for _ in range(rng.randint(1, 2))
        }
        out.append(
            Artist(
                words(rng.randint(1, 2)),
                rng.randint(0, 50_000),
                rng.choice(["Rock", "Pop", "Jazz", "Electronic", "Folk"]),
                albums,
            )
        )
    return out


def catalogue_tracks() -> tuple[list[IndexedTrack], dict[str, int]]:
    """Every track of the set, and its play count."""
    tracks: list[IndexedTrack] = []
    plays: dict[str, int] = {}
    artists = CATALOGUE + _filler(random.Random(7), 300)
    for a, artist in enumerate(artists):
        titles = [(album, year, t) for album, (year, ts) in artist.albums.items() for t in ts]
        weights = [1.0 / (i + 1) for i in range(len(titles))]
        total = sum(weights)
        for i, (album, year, title) in enumerate(titles):
            track_id = f"rel-{a}-{i}"
            tracks.append(
                IndexedTrack(
                    track_id,
                    _version(track_id),
                    title,
                    artist.name,
                    album,
                    year,
                    200_000,
                    genre=artist.genre,
                )
            )
            plays[track_id] = int(artist.plays * weights[i] / total)
    for i, (artist, title, count) in enumerate(HOME_TRACKS):
        track_id = f"rel-home-{i}"
        tracks.append(
            IndexedTrack(
                track_id, _version(track_id), title, artist, "Singles", 2010, 200_000, genre="Pop"
            )
        )
        plays[track_id] = count
    return tracks, plays


def load(db: Database) -> None:
    """Index the catalogue (play counts first, so the artists' and albums' sums see them)."""
    tracks, plays = catalogue_tracks()
    with db.transaction() as tx:
        tx.executemany(
            "INSERT INTO track_stats (track_id, plays) VALUES (:t, :p)",
            [{"t": t, "p": p} for t, p in plays.items()],
        )
    index = TrackIndex(db)
    for i in range(0, len(tracks), 500):
        index.upsert(tracks[i : i + 500])


def _label(kind: str, row: dict) -> str:
    if kind == "artist":
        return row["name"]
    if kind == "album":
        return row["title"]
    return f"{row['title']} / {row['artist']}"


@dataclass
class Outcome:
    case: Case
    top: list[str]

    @property
    def hit(self) -> bool:
        return self.case.expect in self.top[:3]


def run(search: SearchService) -> list[Outcome]:
    out = []
    for case in CASES:
        rows, _ = search.search(parse_query(case.q), case.kind, limit=5, offset=0)
        out.append(Outcome(case, [_label(case.kind, r) for r in rows]))
    return out


def summary(backend: str, outcomes: list[Outcome]) -> str:
    hits = sum(o.hit for o in outcomes)
    first = sum(bool(o.top) and o.top[0] == o.case.expect for o in outcomes)
    lines = [
        f"search relevance [{backend}]: top-3 {hits}/{len(outcomes)} "
        f"({100 * hits / len(outcomes):.1f}%), top-1 {first}/{len(outcomes)}"
    ]
    for o in outcomes:
        if not o.hit:
            lines.append(
                f"  miss: {o.case.q!r} ({o.case.kind}, {o.case.why}): "
                f"want {o.case.expect!r}, got {o.top[:3]}"
            )
    return "\n".join(lines)


if __name__ == "__main__":  # python -m tests.delivery.modules.relevance_set
    import tempfile

    from delivery.db import open_database
    from tests.delivery.modules.conftest import modules_settings

    with tempfile.TemporaryDirectory() as tmp:
        database = open_database(f"sqlite:///{tmp}/relevance.db")
        database.migrate()
        load(database)
        print(summary("sqlite", run(SearchService(database, modules_settings()))))
